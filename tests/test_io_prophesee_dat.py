"""Prophesee DAT: real N-CARS files vs expelliarmus, kernel vs numpy reference, round trips, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventclip.events import Geometry, make_events
from eventclip.io import EventFormatError, GeometryError, TruncatedFileError, detect_format, read_events, write_events
from eventclip.io import _dat_kernels as K
from eventclip.io.errors import UnsupportedFeatureError
from tests._io_helpers import event_streams, same_events
from tests.conftest import recording

DAT_FILES = ["ncars_obj_004397_td.dat", "ncars_tonic_sample.dat"]


@pytest.mark.parametrize("name", DAT_FILES)
def test_real_dat_matches_expelliarmus(name):
    path = recording(name)
    assert detect_format(path).name == "dat"
    chunk = read_events(path)
    assert chunk.meta["geometry_source"] == "scan"  # N-CARS headers carry no % Width/% Height
    expelliarmus = pytest.importorskip("expelliarmus")
    ref = expelliarmus.Wizard(encoding="dat", fpath=path).read()
    assert len(chunk) == len(ref) > 1000
    for f in "xypt":
        np.testing.assert_array_equal(chunk.events[f].astype(np.int64), ref[f].astype(np.int64))
    ref_file = path.with_name(path.name.replace(".dat", ".expelliarmus_ref.npy"))
    if ref_file.exists():
        stored = np.load(ref_file)
        for f in "xypt":
            np.testing.assert_array_equal(chunk.events[f].astype(np.int64), stored[f].astype(np.int64))


@pytest.mark.parametrize("name", DAT_FILES)
def test_dat_kernel_matches_reference(name):
    path = recording(name)
    chunk = read_events(path)
    words = np.fromfile(path, dtype="<u4", offset=chunk.meta["data_offset"]).reshape(-1, 2)
    x, y, p, t = K.reference_decode_dat(words, chunk.geometry.width, chunk.geometry.height)
    assert same_events(chunk.events, make_events(x, y, p, t))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)), max_size=30),
       st.integers(1, 1 << 14), st.integers(1, 1 << 14))
def test_dat_kernel_matches_reference_on_random_records(records, width, height):
    words = np.array(records, dtype=np.uint32).reshape(-1, 2)
    ref = K.reference_decode_dat(words, width, height)
    out = np.empty(len(words), dtype=make_events([], [], [], []).dtype)
    state = np.array([0, -1], dtype=np.int64)
    n, err, at = K.decode_dat(words, out.view(np.int64).reshape(-1, 2), state, width, height)
    if len(ref) == 2:
        assert (err, at) == ref
    else:
        assert err == 0 and same_events(out, make_events(*ref))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams(max_side=4096, max_gap_bits=30, start_bits=31))
def test_dat_round_trip_ours_and_faery(tmp_path_factory, stream):
    events, geometry = stream
    path = tmp_path_factory.mktemp("dat") / "x.dat"
    write_events(path, events, geometry)
    back = read_events(path)
    assert back.geometry == geometry and back.meta["geometry_source"] == "header"
    assert same_events(back.events, events)
    faery = pytest.importorskip("faery")
    if len(events):
        fa = np.concatenate(list(faery.events_stream_from_file(path)))
        assert same_events(make_events(fa["x"], fa["y"], fa["on"], fa["t"].astype(np.int64)), events)


def test_dat_time_wraps_past_32_bits(tmp_path):
    t = np.array([(1 << 32) - 10, (1 << 32) - 1, 1 << 32, (1 << 32) + 5, (1 << 33) + 7], dtype=np.int64)
    ev = make_events([0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], t)
    path = tmp_path / "wrap.dat"
    from eventclip.io import open_writer

    with open_writer(path, Geometry(8, 8)) as w:
        w.write(ev[:4])
        with pytest.raises(EventFormatError, match="2\\^31"):
            w.write(ev[4:])
    assert same_events(read_events(path).events, ev[:4])


def test_dat_bad_input(tmp_path):
    src = recording(DAT_FILES[1]).read_bytes()
    trunc = tmp_path / "t.dat"
    trunc.write_bytes(src[:-3])
    with pytest.raises(TruncatedFileError) as info:
        read_events(trunc)
    assert info.value.offset == len(src) - 8

    hdr_end = src.index(b"\n% Date") + 1
    hdr_end = src.index(b"\n", hdr_end) + 1
    other = tmp_path / "o.dat"
    other.write_bytes(src[:hdr_end] + bytes([0x0E, 8]) + src[hdr_end + 2:])
    with pytest.raises(UnsupportedFeatureError):
        read_events(other)

    back = tmp_path / "b.dat"
    body = np.frombuffer(src[hdr_end + 2:], dtype="<u4").reshape(-1, 2).copy()
    body[4, 0] = max(int(body[4, 0]), 1)
    body[5, 0] = body[4, 0] - 1
    back.write_bytes(src[:hdr_end + 2] + body.tobytes())
    with pytest.raises(EventFormatError, match="backwards") as info:
        read_events(back)
    assert info.value.offset == hdr_end + 2 + 5 * 8

    small = tmp_path / "g.dat"
    small.write_bytes(b"% Data file containing CD events.\n% Width 4\n% Height 4\n" + bytes([0x0C, 8])
                      + np.array([[1, 9]], dtype="<u4").tobytes())
    with pytest.raises(GeometryError):
        read_events(small)

    empty = tmp_path / "e.dat"
    empty.write_bytes(b"")
    with pytest.raises(EventFormatError):
        read_events(empty)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)), max_size=30),
       st.integers(1, 29))
def test_geometry_scan_kernel_matches_reference_in_blocks(records, block):
    """The scan stops at the first record the decoder would refuse and sizes the sensor from the records
    before it, whatever the block size (its state carries across blocks)."""
    words = np.array(records, dtype=np.uint32).reshape(-1, 2)
    want = K.reference_scan_dat(words)
    state = np.array([0, -1], dtype=np.int64)
    mx = my = -1
    for start in range(0, len(words), block):
        bx, by, n, err = K.scan_dat(words[start:start + block], state)
        mx, my = max(mx, int(bx)), max(my, int(by))
        if err:
            assert (mx, my, start + int(n), int(err)) == want
            return
    assert (mx, my, len(words), 0) == want


def test_garbage_after_the_records_does_not_size_the_sensor(tmp_path, capsys, caplog):
    """Random bytes appended to a DAT file without a geometry header: the scan used to take their
    coordinates (a ~16k x 16k sensor, a 3.3 GB frame). The sensor comes from the records before the
    first bad one, which every reader of the file then reports with its offset."""
    from eventclip.cli import main
    from eventclip.io import open_events

    src = recording(DAT_FILES[0])
    good = read_events(src)
    bad = tmp_path / "g.dat"
    bad.write_bytes(src.read_bytes() + np.random.default_rng(4099).bytes(4099))
    with open_events(bad) as stream:
        assert stream.geometry == good.geometry
        assert stream.metadata["geometry_source"] == "scan"
        assert stream.metadata["corrupt_at"] == src.stat().st_size
        with pytest.raises(EventFormatError) as info:
            for _ in stream:
                pass
    assert info.value.offset == src.stat().st_size
    assert f"byte {src.stat().st_size}" in caplog.text  # said when the file is opened, before any event
    out = tmp_path / "fr"
    assert main(["frames", "--max-frames", "1", "--out", str(out), str(bad)]) == 0
    from PIL import Image

    (png,) = out.glob("*.png")
    assert Image.open(png).size == (good.geometry.width, good.geometry.height)
    assert main(["frames", "--out", str(tmp_path / "all"), str(bad)]) == 1
    assert f"{bad} at byte {src.stat().st_size}" in capsys.readouterr().err


def test_dat_streaming_in_tiny_blocks(monkeypatch):
    import eventclip.io.prophesee_dat as dat
    from eventclip.io import open_events

    path = recording(DAT_FILES[0])
    whole = read_events(path).events
    monkeypatch.setattr(dat, "BLOCK_RECORDS", 100)
    with open_events(path) as stream:
        blocks = [c.events for c in stream]
    assert len(blocks) > 40 and same_events(np.concatenate(blocks), whole)


@pytest.mark.parametrize("block_records", [100, 1 << 18])
def test_a_bad_record_mid_stream_comes_after_every_event_before_it(tmp_path, monkeypatch, block_records):
    """Time going back in the middle of a real file (inside a block, and in the only block): the
    stream yields every event before the bad record, exactly the file cut there, then the error."""
    import eventclip.io.prophesee_dat as dat
    from eventclip.io import open_events

    monkeypatch.setattr(dat, "BLOCK_RECORDS", block_records)
    src = recording(DAT_FILES[0]).read_bytes()
    start = dat.DatReader(recording(DAT_FILES[0])).data_offset
    body = np.frombuffer(src[start:], dtype="<u4").reshape(-1, 2).copy()
    k = len(body) // 2 + 37
    body[k, 0] = 0  # time 0 after later times
    bad, prefix = tmp_path / "bad.dat", tmp_path / "prefix.dat"
    bad.write_bytes(src[:start] + body.tobytes())
    prefix.write_bytes(src[:start] + body[:k].tobytes())
    got = []
    with pytest.raises(EventFormatError, match="backwards") as info, open_events(bad) as stream:
        for chunk in stream:
            got.append(chunk.events.copy())
    assert info.value.offset == start + 8 * k
    want = read_events(prefix).events
    assert len(want) > 100 and same_events(np.concatenate(got), want)
