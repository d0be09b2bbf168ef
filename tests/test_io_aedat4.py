"""AEDAT 4.0: our decoder vs dv-processing and the `aedat` package on real recordings, our writer read back
by both peers, hypothesis round-trips, and typed errors for bad input."""

from __future__ import annotations

import struct

import lz4.frame
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from eventclip._optional import available
from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io import aedat4 as aedat4_mod
from eventclip.io.aedat4 import (
    MAGIC,
    Aedat4Reader,
    Aedat4Writer,
    _event_packet,
    _info_xml,
    _io_header,
    convert_words,
    convert_words_reference,
)
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, UnsupportedFeatureError
from tests._io_helpers import event_streams, same_events
from tests.conftest import recording

REAL = {
    "inivation_davis346_events_frames_imu.aedat4": Geometry(346, 260),
    "inivation_dvxplorer_320x240.aedat4": Geometry(320, 240),
}


def read_all(path, **kwargs) -> tuple[np.ndarray, Aedat4Reader]:
    with Aedat4Reader(path, **kwargs) as reader:
        blocks = list(reader)
    return (np.concatenate(blocks, dtype=EVENT_DTYPE) if blocks else np.empty(0, EVENT_DTYPE)), reader


def read_dv(path) -> tuple[np.ndarray, tuple[int, int]]:
    dv = pytest.importorskip("dv_processing")
    rec = dv.io.MonoCameraRecording(str(path))
    blocks = []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is not None and len(batch) > 0:
            blocks.append(batch.numpy())
    ev = np.concatenate(blocks) if blocks else np.empty(0, [("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"),
                                                             ("polarity", "i1")])
    return make_events(ev["x"], ev["y"], ev["polarity"], ev["timestamp"]), rec.getEventResolution()


def read_aedat_pkg(path) -> np.ndarray:
    aedat = pytest.importorskip("aedat")
    blocks = [packet["events"] for packet in aedat.Decoder(str(path)) if "events" in packet]
    ev = np.concatenate(blocks)
    return make_events(ev["x"], ev["y"], ev["on"].astype(np.int16), ev["t"].astype(np.int64))


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_recording_matches_dv_processing_and_aedat(name):
    path = recording(name)
    ours, reader = read_all(path)
    assert reader.geometry == REAL[name]
    theirs, resolution = read_dv(path)
    assert tuple(resolution) == (REAL[name].width, REAL[name].height)
    assert len(ours) > 100_000
    assert same_events(ours, theirs)
    assert same_events(ours, read_aedat_pkg(path))


def test_other_streams_are_skipped_and_described():
    _, reader = read_all(recording("inivation_davis346_events_frames_imu.aedat4"))
    types = {s["type"] for s in reader.metadata["streams"].values()}
    assert types == {"EVTS", "FRME", "IMUS", "TRIG"}
    assert reader.metadata["compression"] == "LZ4" and reader.stream_id == 0


def test_block_size_and_prefetch_do_not_change_the_events():
    path = recording("inivation_dvxplorer_320x240.aedat4")
    big, _ = read_all(path)
    assert same_events(big, read_all(path, block_events=1000)[0])
    assert same_events(big, read_all(path, prefetch=0)[0])


def test_kernel_matches_numpy_reference():
    rng = np.random.default_rng(8)
    with Aedat4Reader(recording("inivation_davis346_events_frames_imu.aedat4")) as reader:
        real = [reader._decode_packet(pos, raw) for pos, raw in reader._packets()]
    cases = [(w.view(np.int64), 346, 260, -(1 << 63)) for w in real[:5]]
    cases.append((real[0].view(np.int64), 346, 260, int(real[0].view(np.int64)[3, 0])))  # time goes back
    cases.append((real[0].view(np.int64), 100, 260, 0))  # geometry
    for _ in range(30):
        garbage = rng.integers(0, 4, (50, 2)).astype(np.int64) * rng.integers(-(1 << 62), 1 << 62, (50, 2))
        garbage[:, 0] = np.sort(garbage[:, 0]) if rng.random() < 0.5 else garbage[:, 0]
        garbage[:, 1] &= rng.choice([(1 << 40) - 1, (1 << 33) - 1, 0x1FF01FF, -1])
        cases.append((garbage, int(rng.integers(1, 1 << 16)), int(rng.integers(1, 1 << 16)), 0))
    statuses = set()
    for words, w, h, last_t in cases:
        out_ref = np.zeros_like(words)
        out_fast = np.zeros_like(words)
        ref = convert_words_reference(words, out_ref, w, h, last_t)
        assert convert_words(words, out_fast, w, h, last_t) == ref
        statuses.add(ref[0])
        if ref[0] == 0:
            assert np.array_equal(out_ref, out_fast)
    assert statuses == {0, 1, 2, 3}


@pytest.mark.parametrize("name", sorted(REAL))
def test_our_writer_is_read_back_identically_by_dv_processing_and_aedat(tmp_path, name):
    events, reader = read_all(recording(name))
    out = tmp_path / "copy.aedat4"
    with Aedat4Writer(out, reader.geometry, packet_events=5000) as writer:
        writer.write(events[:7001])
        writer.write(events[7001:])
    theirs, resolution = read_dv(out)
    assert tuple(resolution) == (reader.geometry.width, reader.geometry.height)
    assert same_events(events, theirs)
    assert same_events(events, read_aedat_pkg(out))
    again, reader2 = read_all(out)
    assert reader2.geometry == reader.geometry and same_events(events, again)


def test_empty_stream_round_trips_and_dv_reads_it(tmp_path):
    out = tmp_path / "empty.aedat4"
    Aedat4Writer(out, Geometry(5, 7)).close()
    events, reader = read_all(out)
    assert len(events) == 0 and reader.geometry == Geometry(5, 7)
    theirs, resolution = read_dv(out)
    assert len(theirs) == 0 and tuple(resolution) == (5, 7)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=event_streams(max_events=80, max_side=2048))
def test_hypothesis_round_trip(tmp_path, stream):
    events, geometry = stream
    out = tmp_path / "rt.aedat4"
    with Aedat4Writer(out, geometry, packet_events=17) as writer:
        writer.write(events)
    back, reader = read_all(out)
    assert reader.geometry == geometry
    assert same_events(events, back)


@pytest.mark.skipif(not available("dv_processing"), reason="dv-processing not installed")
def test_hypothesis_examples_read_by_dv_processing(tmp_path):
    # Long gaps, t not at 0, corners: checked once with the independent reader.
    g = Geometry(2048, 1)
    ev = make_events([0, 2047, 0, 2047], [0, 0, 0, 0], [1, 0, 0, 1], [5, 5 + (1 << 25), (1 << 40), (1 << 40) + 1])
    out = tmp_path / "gaps.aedat4"
    with Aedat4Writer(out, g) as writer:
        writer.write(ev)
    assert same_events(read_dv(out)[0], ev)


def _raw_file(path, packets: list[bytes], compression: int = 1, geometry: Geometry = Geometry(10, 10),
              compress=lz4.frame.compress, stream_id: int = 0) -> None:
    header = _io_header(compression, -1, _info_xml(geometry, "test"))
    body = b"".join(struct.pack("<ii", stream_id, len(c)) + c for c in (compress(p) for p in packets))
    path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header + body)


def _words(x, y, p, t) -> np.ndarray:
    ev = make_events(x, y, p, t)
    words = np.empty((len(ev), 2), np.uint64)
    words[:, 0] = ev["t"].view(np.uint64)
    words[:, 1] = ev.view(np.uint64).reshape(-1, 2)[:, 0] & np.uint64((1 << 40) - 1)
    return words


def test_uncompressed_file_decodes(tmp_path):
    out = tmp_path / "none.aedat4"
    _raw_file(out, [_event_packet(_words([1, 2], [3, 4], [0, 1], [10, 20]))], compression=0, compress=bytes)
    events, reader = read_all(out)
    assert reader.metadata["compression"] == "NONE"
    assert same_events(events, make_events([1, 2], [3, 4], [0, 1], [10, 20]))


@pytest.mark.skipif(available("zstandard"), reason="zstandard is installed here")
def test_zstd_without_zstandard_says_what_to_install(tmp_path):
    out = tmp_path / "zstd.aedat4"
    _raw_file(out, [b"\x28\xb5\x2f\xfd"], compression=3, compress=bytes)
    with pytest.raises(UnsupportedFeatureError, match="pip install zstandard"):
        Aedat4Reader(out)


def test_packets_of_other_streams_are_skipped(tmp_path):
    out = tmp_path / "other.aedat4"
    _raw_file(out, [_event_packet(_words([1], [1], [1], [5]))], stream_id=7)
    events, _ = read_all(out)
    assert len(events) == 0


def _expect(exc_type, path, offset=None, match=None):
    with pytest.raises(exc_type, match=match) as info:
        read_all(path)
    assert str(path) in str(info.value)
    if offset is not None:
        assert info.value.offset == offset
    return info.value


def test_empty_file(tmp_path):
    out = tmp_path / "empty.aedat4"
    out.write_bytes(b"")
    _expect(EventFormatError, out, 0)


def test_truncated_header_and_packet(tmp_path):
    good = tmp_path / "good.aedat4"
    _raw_file(good, [_event_packet(_words([1, 2], [3, 4], [0, 1], [10, 20]))])
    data = good.read_bytes()
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(data[:8])
    _expect(TruncatedFileError, cut, 8)
    cut.write_bytes(data[:40])
    _expect(TruncatedFileError, cut)
    cut.write_bytes(data[:-3])
    packet_at = len(MAGIC) + 4 + struct.unpack_from("<I", data, len(MAGIC))[0]
    _expect(TruncatedFileError, cut, packet_at, match="runs past the end")


def test_cut_before_the_data_table(tmp_path):
    data = recording("inivation_dvxplorer_320x240.aedat4").read_bytes()
    cut = tmp_path / "cut.aedat4"
    with Aedat4Reader(recording("inivation_dvxplorer_320x240.aedat4")) as reader:
        offsets = [pos for pos, _ in reader._packets()]
    cut.write_bytes(data[: offsets[10]])
    _expect(TruncatedFileError, cut, offsets[10], match="before dataTablePosition")


def test_garbage_and_lying_header(tmp_path):
    out = tmp_path / "garbage.aedat4"
    out.write_bytes(bytes(range(256)) * 4)
    _expect(EventFormatError, out, 0)
    out.write_bytes(MAGIC + b"\x10\x00\x00\x00" + b"% evt 3.0\n% end\n" + bytes(64))
    _expect(EventFormatError, out)


def test_events_outside_the_declared_geometry(tmp_path):
    out = tmp_path / "outside.aedat4"
    _raw_file(out, [_event_packet(_words([1, 10], [3, 4], [0, 1], [10, 20]))], geometry=Geometry(10, 10))
    err = _expect(GeometryError, out, match="outside the sensor geometry")
    assert err.offset > len(MAGIC)


def test_negative_or_missing_sensor_size(tmp_path):
    out = tmp_path / "size.aedat4"
    _raw_file(out, [_event_packet(_words([1], [1], [1], [5]))], geometry=Geometry(10, 10))
    data = out.read_bytes()
    out.write_bytes(data.replace(b'"sizeX" type="int">10<', b'"sizeX" type="int">-1<'))
    _expect(GeometryError, out, match="sizeX")
    out.write_bytes(data.replace(b'"sizeY" type="int">10<', b'"sizeY" type="int">xx<'))
    _expect(EventFormatError, out, match="non-integer")


def test_time_going_backwards(tmp_path):
    out = tmp_path / "back.aedat4"
    _raw_file(out, [_event_packet(_words([1, 2], [3, 4], [0, 1], [30, 40])),
                    _event_packet(_words([1], [3], [0], [20]))])
    _expect(EventFormatError, out, match="back in time")


def test_bad_polarity_byte(tmp_path):
    words = _words([1], [1], [1], [5])
    words[0, 1] |= np.uint64(0x7 << 32)
    out = tmp_path / "pol.aedat4"
    _raw_file(out, [_event_packet(words)])
    _expect(EventFormatError, out, match="polarity")


def test_corrupt_lz4_packet(tmp_path):
    out = tmp_path / "lz4.aedat4"
    _raw_file(out, [b"not lz4 at all"], compress=bytes)
    _expect(EventFormatError, out, match="decompress")


def test_writer_refuses_bad_events(tmp_path):
    with Aedat4Writer(tmp_path / "w.aedat4", Geometry(4, 4)) as writer:
        with pytest.raises(ValueError, match="does not fit"):
            writer.write(make_events([4], [0], [1], [0]))
        writer.write(make_events([0], [0], [1], [10]))
        with pytest.raises(ValueError, match="time order"):
            writer.write(make_events([0], [0], [1], [9]))


def test_small_and_large_packets_in_file_order_with_or_without_prefetch(tmp_path):
    """Large packets are decompressed ahead in the worker, small ones in the calling thread: with a
    small corrupt packet after them, every mode delivers the same events and then the same error
    (the corrupt packet's offset), never the error first."""
    rng = np.random.default_rng(5)
    n = 20_000
    big = _event_packet(_words(rng.integers(0, 1000, n), rng.integers(0, 1000, n), rng.integers(0, 2, n),
                               np.sort(rng.integers(0, 10**6, n))))
    small = _event_packet(_words([1, 2], [3, 4], [0, 1], [2 * 10**6, 2 * 10**6 + 5]))
    assert len(lz4.frame.compress(big)) >= aedat4_mod.PREFETCH_MIN_BYTES > len(lz4.frame.compress(small))
    path = tmp_path / "mixed.aedat4"
    corrupt = b"not lz4"
    _raw_file(path, [big, small, corrupt], geometry=Geometry(1000, 1000),
              compress=lambda p: p if p == corrupt else lz4.frame.compress(p))
    seen = []
    for prefetch in (0, 1, 2):
        reader = Aedat4Reader(path, prefetch=prefetch, block_events=1)
        got = []
        with pytest.raises(EventFormatError, match="decompress") as info:
            for block in reader:
                got.append(block.copy())
        reader.close()
        seen.append((np.concatenate(got) if got else np.empty(0, EVENT_DTYPE), info.value.offset))
    for events, offset in seen[1:]:
        assert offset == seen[0][1] and same_events(events, seen[0][0])
    assert len(seen[0][0]) >= n  # the large packet's events came out before the error


def _stream_until_error(path, **kwargs) -> tuple[np.ndarray, EventFormatError]:
    """Every event a stream yields before it raises, and the error."""
    got = []
    with pytest.raises(EventFormatError) as info, Aedat4Reader(path, **kwargs) as reader:
        for block in reader:
            got.append(block.copy())
    return (np.concatenate(got) if got else np.empty(0, EVENT_DTYPE)), info.value


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_recording_cut_mid_packet_still_gives_every_complete_packet(tmp_path, prefetch):
    """A recorder killed mid-write: the stream yields all events of the complete packets (exactly
    what the intact file holds up to there), then says where the file was cut."""
    src = recording("inivation_dvxplorer_320x240.aedat4")
    whole, _ = read_all(src)
    with Aedat4Reader(src) as reader:
        packets = [(pos, len(reader._decode_packet(pos, raw))) for pos, raw in reader._packets()]
    k = len(packets) // 2
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(src.read_bytes()[: packets[k][0] + 20])  # into packet k
    events, error = _stream_until_error(cut, prefetch=prefetch)
    assert isinstance(error, TruncatedFileError) and error.offset == packets[k][0]
    before = sum(n for _, n in packets[:k])
    assert before > 0 and same_events(events, whole[:before])


def test_a_bad_event_mid_packet_comes_after_the_good_ones(tmp_path):
    words = _words([1, 2, 3, 4], [1, 1, 1, 1], [0, 1, 0, 1], [10, 20, 30, 40])
    words[2, 1] |= np.uint64(0x7 << 32)  # the third event's polarity byte
    out = tmp_path / "pol.aedat4"
    _raw_file(out, [_event_packet(_words([5], [5], [1], [5])), _event_packet(words)])
    events, error = _stream_until_error(out, block_events=1)
    assert "polarity" in str(error)
    assert same_events(events, make_events([5, 1, 2], [5, 1, 1], [1, 0, 1], [5, 10, 20]))
