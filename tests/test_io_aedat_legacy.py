"""AEDAT 2.0 (jAER DVS128) and AEDAT 3.1 (cAER polarity packets). No real sample is available, so files
are built here by small writers that follow the published layouts, and cross-checked with tonic's readers."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io.aedat_legacy import Aedat2Reader, Aedat31Reader
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, UnsupportedFeatureError
from tests._io_helpers import same_events

AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n")
AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2017-01-01 10:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def read_all(reader_cls, path, **kwargs):
    with reader_cls(path, **kwargs) as reader:
        blocks = list(reader)
    return (np.concatenate(blocks, dtype=EVENT_DTYPE) if blocks else np.empty(0, EVENT_DTYPE)), reader


def tonic_records(path) -> np.ndarray:
    """tonic's own header and record parsing (address, timeStamp per record).

    tonic 1.7's read_dvs_128 / read_dvs_ibm crash (they unpack two values from
    read_aedat_header_from_file, which returns three), so the tests call the two functions beneath them
    and apply the same address masks those readers apply.
    """
    tonic_io = pytest.importorskip("tonic.io")
    version, start, _ = tonic_io.read_aedat_header_from_file(str(path))
    return tonic_io.get_aer_events_from_file(str(path), version, start)


def aedat2_body(events: np.ndarray, special_at: tuple[int, ...] = ()) -> bytes:
    """jAER DVS128 records: raw x = 127 - x, raw y = 127 - y (jAER's origin is bottom-left), raw pol = 1 - p."""
    addr = (((127 - events["y"].astype(np.uint32)) << 8) | ((127 - events["x"].astype(np.uint32)) << 1)
            | (1 - events["p"].astype(np.uint32)))
    rec = np.empty(len(events), dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"], rec["t"] = addr, events["t"] & 0xFFFFFFFF
    rec["a"][list(special_at)] |= 0x8000
    return rec.tobytes()


def aedat31_packet(events: np.ndarray, overflow: int = 0, valid: np.ndarray | None = None, etype: int = 1,
                   capacity_extra: int = 0) -> bytes:
    valid = np.ones(len(events), bool) if valid is None else valid
    data = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
            | (events["p"].astype(np.uint32) << 1) | valid.astype(np.uint32))
    rec = np.zeros(len(events) + capacity_extra, dtype=[("d", "<u4"), ("t", "<i4")])
    rec["d"][: len(events)], rec["t"][: len(events)] = data, events["t"] & 0x7FFFFFFF
    head = struct.pack("<hhiiiiii", etype, 1, 8, 4, overflow, len(rec), len(events), int(valid.sum()))
    return head + rec.tobytes()


@pytest.fixture
def dvs_events() -> np.ndarray:
    rng = np.random.default_rng(11)
    n = 400
    ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                     5_000 + np.cumsum(rng.integers(0, 40, n)))
    ev[:4] = make_events([0, 127, 0, 127], [0, 0, 127, 127], [1, 0, 1, 0], ev["t"][:4])
    return ev


def test_aedat2_round_trip_and_tonic_cross_check(tmp_path, dvs_events):
    out = tmp_path / "dvs128.aedat"
    out.write_bytes(AEDAT2_HEADER + aedat2_body(dvs_events))
    events, reader = read_all(Aedat2Reader, out, block_events=64)
    assert reader.geometry == Geometry(128, 128) and same_events(events, dvs_events)
    rec = tonic_records(out)
    addr = rec["address"].astype(np.int64)
    theirs = {"x": (addr >> 8) & 0x7F, "y": (addr >> 1) & 0x7F, "p": addr & 1, "t": rec["timeStamp"]}
    # tonic returns the raw address bits (x from bits 8-14, y from bits 1-7, raw polarity); we apply jAER's
    # DVS128 extractor (x flipped, polarity flipped) and move the origin to the top-left.
    assert np.array_equal(theirs["x"], 127 - events["y"].astype(int))
    assert np.array_equal(theirs["y"], 127 - events["x"].astype(int))
    assert np.array_equal(theirs["p"], 1 - events["p"].astype(int))
    assert np.array_equal(theirs["t"], events["t"])


def test_aedat2_special_events_and_time_wrap(tmp_path):
    ev = make_events([1, 2, 3, 4], [1, 1, 1, 1], [0, 1, 0, 1], [(1 << 32) - 10, (1 << 32) - 5, 3, 8])
    out = tmp_path / "wrap.aedat"
    out.write_bytes(AEDAT2_HEADER + aedat2_body(ev, special_at=(1,)))
    events, reader = read_all(Aedat2Reader, out, block_events=2)
    expected = make_events([1, 3, 4], [1, 1, 1], [0, 0, 1], [(1 << 32) - 10, (1 << 32) + 3, (1 << 32) + 8])
    assert same_events(events, expected) and reader.metadata["special_events"] == 1


def test_aedat2_errors(tmp_path, dvs_events):
    out = tmp_path / "bad.aedat"
    body = aedat2_body(dvs_events[:3])
    out.write_bytes(AEDAT2_HEADER + body[:-3])
    with pytest.raises(TruncatedFileError) as info:
        read_all(Aedat2Reader, out)
    assert info.value.offset == len(AEDAT2_HEADER) + 16
    out.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n" + body)
    with pytest.raises(UnsupportedFeatureError, match="DAVIS240C"):
        read_all(Aedat2Reader, out)
    back = make_events([1, 2], [1, 1], [0, 0], [100, 50])
    out.write_bytes(AEDAT2_HEADER + aedat2_body(back))
    with pytest.raises(EventFormatError, match="back in time") as info:
        read_all(Aedat2Reader, out)
    assert info.value.offset == len(AEDAT2_HEADER) + 8
    out.write_bytes(b"")
    with pytest.raises(EventFormatError):
        read_all(Aedat2Reader, out)
    out.write_bytes(AEDAT2_HEADER + body)
    with pytest.raises(GeometryError):
        read_all(Aedat2Reader, out, geometry=Geometry(10, 10))


def test_aedat31_round_trip_and_tonic_cross_check(tmp_path, dvs_events):
    out = tmp_path / "gesture.aedat"
    out.write_bytes(AEDAT31_HEADER + aedat31_packet(dvs_events[:150]) + aedat31_packet(dvs_events[150:]))
    events, reader = read_all(Aedat31Reader, out)
    assert reader.geometry == Geometry(128, 128) and same_events(events, dvs_events)
    assert reader.metadata["sources"] == {1: "DVS128"}
    rec = tonic_records(out)
    addr = rec["address"].astype(np.int64)
    theirs = {"x": (addr >> 17) & 0x1FFF, "y": (addr >> 2) & 0x1FFF, "p": (addr >> 1) & 1, "t": rec["timeStamp"]}
    assert same_events(events, make_events(theirs["x"], theirs["y"], theirs["p"], theirs["t"]))


def test_aedat31_overflow_invalid_capacity_and_other_packets(tmp_path):
    a = make_events([1, 2, 3], [4, 5, 6], [1, 0, 1], [10, 20, 30])
    b = make_events([7, 8], [9, 10], [0, 1], [5, 6])
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2) + bytes(16)
    imu = struct.pack("<hhiiiiii", 3, 1, 36, 32, 0, 1, 1, 1) + bytes(36)
    out = tmp_path / "mixed.aedat"
    out.write_bytes(AEDAT31_HEADER + special + aedat31_packet(a, valid=np.array([True, False, True]))
                    + imu + aedat31_packet(b, overflow=1, capacity_extra=3))
    events, reader = read_all(Aedat31Reader, out)
    expected = make_events([1, 3, 7, 8], [4, 6, 9, 10], [1, 1, 0, 1], [10, 30, (1 << 31) + 5, (1 << 31) + 6])
    assert same_events(events, expected)
    assert reader.metadata["invalid_events"] == 1
    assert reader.metadata["skipped_packets"] == {"type 0 source 1": 1, "type 3 source 1": 1}


def test_aedat31_errors(tmp_path, dvs_events):
    out = tmp_path / "bad.aedat"
    good = aedat31_packet(dvs_events[:10])
    out.write_bytes(AEDAT31_HEADER + good[:-5])
    with pytest.raises(TruncatedFileError) as info:
        read_all(Aedat31Reader, out)
    assert info.value.offset == len(AEDAT31_HEADER)
    out.write_bytes(AEDAT31_HEADER + good[:20])
    with pytest.raises(TruncatedFileError):
        read_all(Aedat31Reader, out)
    out.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(TruncatedFileError, match="END-HEADER"):
        read_all(Aedat31Reader, out)
    out.write_bytes(AEDAT31_HEADER.replace(b"DVS128", b"Mystery9000") + good)
    with pytest.raises(GeometryError, match="pass --geometry"):
        read_all(Aedat31Reader, out)
    assert len(read_all(Aedat31Reader, out, geometry=Geometry(128, 128))[0]) == 10
    outside = make_events([128], [0], [1], [5])
    out.write_bytes(AEDAT31_HEADER + aedat31_packet(outside))
    with pytest.raises(GeometryError) as info:
        read_all(Aedat31Reader, out)
    assert info.value.offset == len(AEDAT31_HEADER) + 28
    out.write_bytes(AEDAT31_HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 2, 5, 0))
    with pytest.raises(EventFormatError, match="inconsistent"):
        read_all(Aedat31Reader, out)
    out.write_bytes(AEDAT31_HEADER + aedat31_packet(make_events([1, 2], [1, 1], [0, 0], [9, 3])))
    with pytest.raises(EventFormatError, match="back in time"):
        read_all(Aedat31Reader, out)


def _until_error(reader_cls, path, **kwargs) -> tuple[np.ndarray, EventFormatError]:
    got = []
    with pytest.raises(EventFormatError) as info, reader_cls(path, **kwargs) as reader:
        for block in reader:
            got.append(block.copy())
    return (np.concatenate(got) if got else np.empty(0, EVENT_DTYPE)), info.value


def test_aedat2_stream_yields_the_valid_events_before_the_first_bad_one(tmp_path, dvs_events):
    """Time goes back at event 150 and an event lies outside a 100x128 sensor at 200: the stream
    hands over events 0-149 (in file order, the first problem wins), then raises there."""
    ev = dvs_events.copy()
    ev["x"][:] = np.minimum(ev["x"], 99)
    ev["t"][150] = ev["t"][149] - 1
    ev["x"][200] = 120
    out = tmp_path / "bad.aedat"
    out.write_bytes(AEDAT2_HEADER + aedat2_body(ev))
    events, error = _until_error(Aedat2Reader, out, geometry=Geometry(100, 128))
    assert "back in time" in str(error) and error.offset == len(AEDAT2_HEADER) + 150 * 8
    assert same_events(events, ev[:150])


def test_aedat31_stream_yields_the_valid_events_before_the_first_bad_one(tmp_path, dvs_events):
    """Second packet: an event outside the sensor at 7, before a negative timestamp at 9: events of
    the first packet and 0-6 of the second come out, then the geometry error at event 7's offset."""
    first, second = dvs_events[:20], dvs_events[20:40].copy()
    second["x"][7] = 200
    packet = bytearray(aedat31_packet(second))
    struct.pack_into("<i", packet, 28 + 9 * 8 + 4, -5)  # event 9's timestamp
    out = tmp_path / "bad.aedat"
    out.write_bytes(AEDAT31_HEADER + aedat31_packet(first) + bytes(packet))
    events, error = _until_error(Aedat31Reader, out)
    second_at = len(AEDAT31_HEADER) + len(aedat31_packet(first))
    assert isinstance(error, GeometryError) and error.offset == second_at + 28 + 7 * 8
    assert same_events(events, dvs_events[:27])
