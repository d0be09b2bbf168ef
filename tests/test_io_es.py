"""Event Stream 2.x DVS: the real POKER-DVS sample vs faery, numba kernel vs the plain-Python reference,
the spec's overflow/reset bytes on a hand-built stream, and typed errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, UnsupportedFeatureError
from eventclip.io.es import EsReader, _decode_dvs, decode_dvs_reference
from tests._io_helpers import same_events
from tests.conftest import recording

SAMPLE = "pokerdvs_trcl0_dvs.es"


def read_all(path, **kwargs):
    with EsReader(path, **kwargs) as reader:
        blocks = list(reader)
    return (np.concatenate(blocks, dtype=EVENT_DTYPE) if blocks else np.empty(0, EVENT_DTYPE)), reader


def es_header(width: int, height: int, kind: int = 1) -> bytes:
    return b"Event Stream" + bytes([2, 0, 0, kind]) + width.to_bytes(2, "little") + height.to_bytes(2, "little")


def es_event(dt: int, p: int, x: int, y: int) -> bytes:
    return bytes([(dt << 1) | p]) + x.to_bytes(2, "little") + y.to_bytes(2, "little")


def test_real_sample_matches_faery():
    faery = pytest.importorskip("faery")
    path = recording(SAMPLE)
    ours, reader = read_all(path)
    assert reader.geometry == Geometry(30, 32)
    theirs = np.concatenate([packet for packet in faery.events_stream_from_file(path)])
    assert len(ours) == 2628
    assert same_events(ours, make_events(theirs["x"], theirs["y"], theirs["on"].astype(np.int16), theirs["t"]))


@pytest.mark.parametrize("block_bytes", [1, 5, 7, 333])
def test_tiny_blocks_give_the_same_events(block_bytes):
    path = recording(SAMPLE)
    assert same_events(read_all(path)[0], read_all(path, block_bytes=block_bytes)[0])


def test_kernel_matches_reference_on_real_and_random_bytes():
    data = recording(SAMPLE).read_bytes()[20:]
    rng = np.random.default_rng(3)
    cases = [(data, 30, 32), (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), 65535, 65535),
             (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), 300, 300), (b"", 1, 1)]
    for raw, w, h in cases:
        ref = decode_dvs_reference(raw, 7, w, h)
        fast = _decode_dvs(raw, 7, w, h)
        for a, b in zip(ref[:4], fast[:4], strict=True):
            assert np.array_equal(a, b)
        assert ref[4:] == fast[4:]


def test_overflow_reset_and_flip_follow_the_spec(tmp_path):
    body = (es_event(3, 1, 0, 0) + b"\xff\xff" + es_event(5, 0, 9, 3) + b"\xfe" * 5 + es_event(0, 1, 2, 1))
    out = tmp_path / "spec.es"
    out.write_bytes(es_header(10, 4) + body)
    events, _ = read_all(out)
    # y is flipped (Event Stream's origin is the bottom row); t: 3, 3 + 2*127 + 5, same again.
    expected = make_events([0, 9, 2], [3, 0, 2], [1, 0, 1], [3, 262, 262])
    assert same_events(events, expected)


def test_header_only_file_is_an_empty_stream(tmp_path):
    out = tmp_path / "empty.es"
    out.write_bytes(es_header(4, 4))
    events, reader = read_all(out)
    assert len(events) == 0 and reader.geometry == Geometry(4, 4)


@pytest.mark.parametrize(
    "data, exc, offset",
    [
        (b"", EventFormatError, 0),
        (b"Event Str", TruncatedFileError, 9),
        (b"Event Stream\x02\x00", TruncatedFileError, 14),
        (b"Event Stream\x02\x00\x00\x01\x04\x00", TruncatedFileError, 18),
        (b"%PNG\r\n" + bytes(40), EventFormatError, 0),
        (b"Event Stream\x01\x00\x00\x01" + bytes(8), UnsupportedFeatureError, 12),
        (b"Event Stream\x02\x00\x00\x02" + bytes(8), UnsupportedFeatureError, 15),
        (b"Event Stream\x02\x00\x00\x01\x00\x00\x04\x00", GeometryError, 16),
    ],
)
def test_bad_headers(tmp_path, data, exc, offset):
    out = tmp_path / "bad.es"
    out.write_bytes(data)
    with pytest.raises(exc) as info:
        read_all(out)
    assert info.value.offset == offset and str(out) in str(info.value)


def test_truncated_event_and_outside_geometry(tmp_path):
    out = tmp_path / "cut.es"
    out.write_bytes(es_header(10, 4) + es_event(1, 1, 1, 1) + es_event(1, 1, 2, 2)[:3])
    with pytest.raises(TruncatedFileError) as info:
        read_all(out)
    assert info.value.offset == 25
    out.write_bytes(es_header(10, 4) + es_event(1, 1, 1, 1) + es_event(1, 1, 10, 2))
    with pytest.raises(GeometryError, match="x=10") as info:
        read_all(out)
    assert info.value.offset == 25


@pytest.mark.parametrize("block_bytes", [7, 1 << 20])
def test_a_bad_event_comes_after_every_event_before_it(tmp_path, block_bytes):
    """The stream hands over the valid events before an event outside the sensor, then raises."""
    good = [es_event(1, k % 2, k % 10, k % 4) for k in range(40)]
    out = tmp_path / "bad.es"
    out.write_bytes(es_header(10, 4) + b"".join(good[:23]) + es_event(1, 1, 10, 2) + b"".join(good[23:]))
    got = []
    with pytest.raises(GeometryError, match="x=10") as info, EsReader(out, block_bytes=block_bytes) as reader:
        for block in reader:
            got.append(block.copy())
    assert info.value.offset == 20 + 23 * 5
    prefix = tmp_path / "prefix.es"
    prefix.write_bytes(es_header(10, 4) + b"".join(good[:23]))
    want = read_all(prefix)[0]
    assert len(want) == 23 and same_events(np.concatenate(got), want)
