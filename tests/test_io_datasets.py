"""N-MNIST .bin vs tonic on the real sample (and the overflow marker on a spec-built file); N-ImageNet .npz
in both of the authors' layouts; typed errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io.datasets import NImageNetReader, NmnistReader, _sniff_nimagenet, _sniff_nmnist
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError
from tests._io_helpers import same_events
from tests.conftest import recording


def read_all(reader_cls, path, **kwargs):
    with reader_cls(path, **kwargs) as reader:
        blocks = list(reader)
    return (np.concatenate(blocks, dtype=EVENT_DTYPE) if blocks else np.empty(0, EVENT_DTYPE)), reader


def nmnist_records(x, y, p, t) -> bytes:
    """Spec-following writer: 40-bit big-endian x8 y8 p1 t23."""
    x, y, p, t = (np.asarray(v, dtype=np.uint64) for v in (x, y, p, t))
    word = (x << np.uint64(32)) | (y << np.uint64(24)) | (p << np.uint64(23)) | (t & np.uint64((1 << 23) - 1))
    return b"".join(int(w).to_bytes(5, "big") for w in word)


def test_real_sample_matches_tonic():
    tonic_io = pytest.importorskip("tonic.io")
    path = recording("nmnist_sample.bin")
    ours, reader = read_all(NmnistReader, path)
    theirs = tonic_io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert reader.geometry == Geometry(34, 34) and len(ours) == 4325
    assert same_events(ours, make_events(theirs["x"], theirs["y"], theirs["p"], theirs["t"]))
    assert _sniff_nmnist(path.read_bytes()[:65536], path)


def test_overflow_marker_and_atis_geometry(tmp_path):
    tonic_io = pytest.importorskip("tonic.io")
    out = tmp_path / "caltech.bin"
    out.write_bytes(nmnist_records([5, 0, 200], [7, 240, 100], [1, 0, 0], [100, 0, 50]))
    events, reader = read_all(NmnistReader, out)
    assert reader.geometry == Geometry(304, 240) and reader.metadata["overflow_markers"] == 1
    assert same_events(events, make_events([5, 200], [7, 100], [1, 0], [100, 50 + (1 << 13)]))
    theirs = tonic_io.read_mnist_file(str(out), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert same_events(events, make_events(theirs["x"], theirs["y"], theirs["p"], theirs["t"]))


def test_caller_geometry_wins_and_is_checked(tmp_path):
    out = tmp_path / "s.bin"
    out.write_bytes(nmnist_records([5, 40], [7, 3], [1, 0], [1, 2]))
    with pytest.raises(GeometryError) as info:
        read_all(NmnistReader, out, geometry=Geometry(34, 34))
    assert info.value.offset == 5


@pytest.mark.parametrize("data, exc, offset", [
    (b"", EventFormatError, 0),
    (b"\x01\x02\x03\x04\x05\x06\x07", TruncatedFileError, 5),
])
def test_nmnist_bad_sizes(tmp_path, data, exc, offset):
    out = tmp_path / "bad.bin"
    out.write_bytes(data)
    with pytest.raises(exc) as info:
        read_all(NmnistReader, out)
    assert info.value.offset == offset and str(out) in str(info.value)


def test_nmnist_time_going_back(tmp_path):
    out = tmp_path / "back.bin"
    out.write_bytes(nmnist_records([1, 2, 3], [1, 1, 1], [0, 0, 0], [10, 20, 15]))
    with pytest.raises(EventFormatError, match="back in time") as info:
        read_all(NmnistReader, out)
    assert info.value.offset == 10


@pytest.fixture
def nimagenet_events() -> np.ndarray:
    rng = np.random.default_rng(5)
    n = 500
    return make_events(rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n),
                       1_000_000 + np.cumsum(rng.integers(0, 30, n)))


def test_nimagenet_compressed_layout(tmp_path, nimagenet_events):
    ev = nimagenet_events
    data = np.empty(len(ev), dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "?")])
    data["x"], data["y"], data["t"], data["p"] = ev["x"], ev["y"], ev["t"], ev["p"].astype(bool)
    out = tmp_path / "n02085620_1.npz"
    np.savez_compressed(out, event_data=data)
    assert _sniff_nimagenet(out.read_bytes()[:65536], out)
    events, reader = read_all(NImageNetReader, out, block_events=128)
    assert reader.geometry == Geometry(640, 480) and reader.metadata["layout"] == "event_data"
    assert same_events(events, ev)


def test_nimagenet_uncompressed_layout(tmp_path, nimagenet_events):
    ev = nimagenet_events
    out = tmp_path / "sample.npz"
    np.savez(out, x_pos=ev["x"].astype(np.int32), y_pos=ev["y"].astype(np.int32), timestamp=ev["t"],
             polarity=np.where(ev["p"] == 1, 1, -1).astype(np.int8))
    assert _sniff_nimagenet(out.read_bytes()[:65536], out)
    events, _ = read_all(NImageNetReader, out)
    assert same_events(events, ev)


def test_nimagenet_bad_inputs(tmp_path, nimagenet_events):
    out = tmp_path / "bad.npz"
    out.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(EventFormatError, match="npz"):
        read_all(NImageNetReader, out)
    np.savez(out, something=np.arange(3))
    with pytest.raises(EventFormatError, match="event_data"):
        read_all(NImageNetReader, out)
    np.savez(out, x_pos=np.arange(3), y_pos=np.arange(3), timestamp=np.array([0.5, 1, 2]), polarity=np.ones(3))
    with pytest.raises(EventFormatError, match="integers"):
        read_all(NImageNetReader, out)
    np.savez(out, x_pos=np.array([1, 700]), y_pos=np.arange(2), timestamp=np.arange(2), polarity=np.ones(2))
    with pytest.raises(GeometryError) as info:
        read_all(NImageNetReader, out)
    assert info.value.offset == 1
    np.savez(out, x_pos=np.arange(3), y_pos=np.arange(3), timestamp=np.array([5, 3, 9]), polarity=np.ones(3))
    with pytest.raises(EventFormatError, match="back in time"):
        read_all(NImageNetReader, out)


def test_nimagenet_stream_yields_the_valid_events_before_a_bad_one(tmp_path, nimagenet_events):
    """Event 300 steps back in time (third 128-event block): events 0-299 come out, then the error."""
    ev = nimagenet_events.copy()
    ev["t"][300] = ev["t"][299] - 1
    out = tmp_path / "bad.npz"
    np.savez(out, x_pos=ev["x"].astype(np.int32), y_pos=ev["y"].astype(np.int32), timestamp=ev["t"],
             polarity=np.where(ev["p"] == 1, 1, -1).astype(np.int8))
    got = []
    with pytest.raises(EventFormatError, match="back in time") as info, NImageNetReader(out, block_events=128) as r:
        for block in r:
            got.append(block.copy())
    assert info.value.offset == 300 and same_events(np.concatenate(got), ev[:300])
