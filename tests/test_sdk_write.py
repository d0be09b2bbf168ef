"""Every file our writers make is read back unchanged by the REAL Metavision SDK (OpenEB 5.1.1).

The SDK is the oracle: a RAW or DAT file the camera vendor's own SDK misreads is a broken file.
Real recordings rewritten by our EVT 3.0, EVT 2.0 and DAT writers, and random event arrays
(hypothesis), go through our writer, then the SDK (``EventsIterator``, and SDK 5's ``Camera`` +
``CameraStreamSlicer`` for RAW), our reader and the peer decoders. The peers' known faults are
compared around, and the SDK's own limits are named in tests of their own at the end:

* expelliarmus: EVT 3.0 times too large by multiples of 4096 µs; EVT 2.0 times of 2^34 µs and more wrong;
  a file whose first event word starts with the byte '%' (0x25) after the header's '% end' line makes it
  loop forever (it takes the word for another header line), so it is not given such files.
* faery: EVT 3.0 TIME_HIGH wraps (every 2^24 µs) not counted.
* SDK: a lone VECT_12 read as a 32-column group; an EVT 2.0 TIME_HIGH wrap (2^34 µs) missed unless
  its read buffer spans under ~10 ms; DAT times not unwrapped past 2^32 µs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventclip.events import Geometry, make_events
from eventclip.io import read_events, write_events
from eventclip.io._raw_header import format_header, read_header
from tests._io_helpers import event_streams, row_runs, same_events
from tests._sdk import RAW_RECORDINGS, camera_slicer, events_iterator

pytestmark = pytest.mark.sdk

SUFFIX = {"evt3": ".raw", "evt2": ".raw", "dat": ".dat"}
EVT3_WRAP = 1 << 24
EVT2_WRAP = 1 << 34
DAT_WRAP = 1 << 32
CAMERA_MAX_T = 1 << 31
"""The SDK 5 Camera's cost grows with a file's absolute time (a two-event file at 2^36 µs takes 4-6 s
here, real-time playback off), so random files are read through it below this time; EventsIterator
reads every one."""


def _first_data_byte(path) -> bytes:
    return path.read_bytes()[read_header(path).data_offset:][:1]


def _peers(path, fmt: str, events: np.ndarray) -> None:
    """evt3, faery and expelliarmus read our file as written, except for their known faults (module doc)."""
    if fmt == "dat" or not len(events):
        return
    import faery

    t_max = int(events["t"][-1])
    fa = np.concatenate(list(faery.events_stream_from_file(path)))
    checked = {"faery": (make_events(fa["x"], fa["y"], fa["on"], fa["t"].astype(np.int64)),
                         fmt == "evt2" or t_max < EVT3_WRAP)}
    if _first_data_byte(path) != b"%":
        import expelliarmus

        ex = expelliarmus.Wizard(encoding=fmt, fpath=path).read()
        checked["expelliarmus"] = (make_events(ex["x"], ex["y"], ex["p"], ex["t"].astype(np.int64)),
                                   fmt == "evt2" and t_max < EVT2_WRAP)
    if fmt == "evt3":
        import evt3

        peer = evt3.decode_file(str(path))
        assert same_events(make_events(peer.x, peer.y, peer.polarity, peer.timestamp.astype(np.int64)), events)
    for name, (got, with_time) in checked.items():
        assert len(got) == len(events), name
        for field in ("x", "y", "p", "t") if with_time else ("x", "y", "p"):
            np.testing.assert_array_equal(got[field].astype(np.int64), events[field].astype(np.int64), err_msg=name)


def _round_trip(folder, events: np.ndarray, geometry: Geometry, fmt: str) -> None:
    path = folder / f"ours{SUFFIX[fmt]}"
    write_events(path, events, geometry, format=fmt)
    assert same_events(read_events(path, geometry=geometry).events, events)
    assert same_events(events_iterator(path), events), "SDK EventsIterator"
    if fmt != "dat" and len(events) and int(events["t"][-1]) < CAMERA_MAX_T:
        assert same_events(camera_slicer(path), events), "SDK Camera + CameraStreamSlicer"
    _peers(path, fmt, events)


@pytest.mark.parametrize("fmt", ["evt3", "evt2", "dat"])
@pytest.mark.parametrize("name", RAW_RECORDINGS)
def test_our_rewrite_of_each_recording_is_read_back_unchanged_by_the_sdk_and_peers(tmp_path, name, fmt):
    from tests.conftest import recording

    chunk = read_events(recording(name))
    assert len(chunk) > 1000
    _round_trip(tmp_path, chunk.events, chunk.geometry, fmt)


@pytest.mark.parametrize("name", RAW_RECORDINGS)
def test_evt2_files_the_sdk_writes_are_read_exactly_by_ours(tmp_path, name):
    """The other direction: the SDK's RAWEvt2EventFileWriter (how Metavision records EVT 2.0) -> our reader."""
    import metavision_sdk_stream as stream

    from tests.conftest import recording

    chunk = read_events(recording(name))
    path = tmp_path / "sdk_written.raw"
    writer = stream.RAWEvt2EventFileWriter(chunk.geometry.width, chunk.geometry.height, str(path))
    writer.add_cd_events(chunk.events)
    writer.close()
    back = read_events(path)
    assert back.geometry == chunk.geometry and same_events(back.events, chunk.events)


def test_driving_recording_rewritten_as_evt3_was_the_reported_defect(tmp_path):
    """Issue 17: the SDK read 285,623 events from our EVT 3.0 rewrite of the 219,596-event driving file."""
    from tests.conftest import recording

    chunk = read_events(recording(RAW_RECORDINGS[2]))
    path = tmp_path / "driving.raw"
    write_events(path, chunk.events, chunk.geometry, format="evt3")
    assert len(events_iterator(path)) == len(chunk) == 219_596


PROPERTY = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROPERTY_SLOW = settings(PROPERTY, max_examples=400)
EVT3_STREAMS = st.one_of(row_runs(), event_streams(max_gap_bits=26, start_bits=30))
EVT2_STREAMS = st.one_of(row_runs(), event_streams(max_gap_bits=27, start_bits=30))  # t < 2^34 µs, see below
DAT_STREAMS = st.one_of(row_runs(max_gap_bits=24), event_streams(max_gap_bits=25, start_bits=30))  # t < 2^32 µs


def _property(tmp_path_factory, stream, fmt: str) -> None:
    events, geometry = stream
    _round_trip(tmp_path_factory.mktemp(fmt), events, geometry, fmt)


@PROPERTY
@given(stream=EVT3_STREAMS)
def test_evt3_writer_random_events_sdk_reads_back_equal(tmp_path_factory, stream):
    _property(tmp_path_factory, stream, "evt3")


@PROPERTY
@given(stream=EVT2_STREAMS)
def test_evt2_writer_random_events_sdk_reads_back_equal(tmp_path_factory, stream):
    _property(tmp_path_factory, stream, "evt2")


@PROPERTY
@given(stream=DAT_STREAMS)
def test_dat_writer_random_events_sdk_reads_back_equal(tmp_path_factory, stream):
    _property(tmp_path_factory, stream, "dat")


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "streams"), [("evt3", EVT3_STREAMS), ("evt2", EVT2_STREAMS), ("dat", DAT_STREAMS)])
def test_writers_random_events_sdk_reads_back_equal_long(tmp_path_factory, fmt, streams):
    @PROPERTY_SLOW
    @given(stream=streams)
    def check(stream):
        _property(tmp_path_factory, stream, fmt)

    check()


# ---- the SDK's own limits, named ------------------------------------------------------------------


def _words_file(path, words: list[int], geometry: Geometry) -> None:
    with path.open("wb") as fh:
        fh.write(format_header("evt3", geometry))
        np.array(words, dtype="<u2").tofile(fh)


def test_sdk_reads_a_lone_vect12_as_the_first_word_of_a_32_column_group(tmp_path):
    """The cause of the issue-17 defect: the EVT 3.0 specification lets VECT_12 stand alone (base += 12),
    and our reader and evt3 read it so; the SDK takes it and the next two words as VECT_12, VECT_12,
    VECT_8 (base += 32). Our writer now emits only whole groups, which every decoder reads alike."""
    import evt3

    geometry = Geometry(1280, 720)
    path = tmp_path / "lone_vect12.raw"
    # TIME_HIGH 1, TIME_LOW 5, ADDR_Y 7, VECT_BASE_X x=100 p=1, VECT_12 mask 0b101, ADDR_X x=300 p=0, TIME_LOW 6
    _words_file(path, [0x8001, 0x6005, 0x0007, 0x3800 | 100, 0x4005, 0x2000 | 300, 0x6006], geometry)
    expected = make_events([100, 102, 300], [7, 7, 7], [1, 1, 0], [4101, 4101, 4101])
    assert same_events(read_events(path).events, expected)
    peer = evt3.decode_file(str(path))
    assert same_events(make_events(peer.x, peer.y, peer.polarity, peer.timestamp.astype(np.int64)), expected)
    sdk = events_iterator(path)
    assert not same_events(sdk, expected)
    assert len(sdk) != len(expected) or not np.array_equal(sdk["x"], expected["x"])


def test_sdk_misses_an_evt2_time_high_wrap_that_ours_and_faery_count(tmp_path):
    """EVT 2.0 time wraps every 2^34 µs (4 h 46 min). The SDK counts a wrap only when the TIME_HIGH
    word going back is the last of its read buffer and within ~10 ms of the buffer's start
    (OpenEB's ``EVT2Decoder::LoopThreshold``), so a file crossing 2^34 µs at a normal event rate comes
    back 2^34 µs early from the SDK. Our reader and faery count the wrap."""
    import faery

    ts = np.arange(EVT2_WRAP - 20_000, EVT2_WRAP + 20_000, 500)
    events = make_events(np.arange(len(ts)) % 64, np.zeros(len(ts)), np.ones(len(ts)), ts)
    path = tmp_path / "wrap.raw"
    write_events(path, events, Geometry(64, 64), format="evt2")
    assert same_events(read_events(path).events, events)
    fa = np.concatenate(list(faery.events_stream_from_file(path)))
    np.testing.assert_array_equal(fa["t"].astype(np.int64), ts)
    sdk = events_iterator(path)
    after = ts >= EVT2_WRAP
    np.testing.assert_array_equal(sdk["t"][~after], ts[~after])
    np.testing.assert_array_equal(sdk["t"][after], ts[after] - EVT2_WRAP)


def test_sdk_dat_reader_does_not_unwrap_time_past_2_32_us(tmp_path):
    """DAT stores 32-bit time. Our reader unwraps it (a recording may run past 71.6 min); the SDK's
    EventsIterator DAT reader returns the stored 32 bits."""
    ts = np.array([5, (1 << 31) - 9, DAT_WRAP - 20, DAT_WRAP + 20, DAT_WRAP + (1 << 30)])
    events = make_events(np.arange(5), np.arange(5), np.ones(5), ts)
    path = tmp_path / "long.dat"
    write_events(path, events, Geometry(64, 64))
    assert same_events(read_events(path).events, events)
    np.testing.assert_array_equal(events_iterator(path)["t"], ts % DAT_WRAP)


def test_expelliarmus_loops_forever_when_the_first_event_word_starts_with_a_percent_sign(tmp_path):
    """Our EVT 2.0 file whose first TIME_HIGH word begins with the byte 0x25 ('%'; t >> 6 = 0x25 + k·256):
    the SDK, our reader and faery read it; expelliarmus takes the word for another header line after
    '% end' and never returns (checked in a child process with a time limit)."""
    import subprocess
    import sys

    events = make_events([1, 2], [0, 1], [1, 0], [0x25 << 6, (0x25 << 6) + 10])
    path = tmp_path / "percent.raw"
    write_events(path, events, Geometry(4, 4), format="evt2")
    assert _first_data_byte(path) == b"%"
    assert same_events(events_iterator(path), events) and same_events(read_events(path).events, events)
    _peers(path, "evt2", events)  # faery
    code = f"import expelliarmus; expelliarmus.Wizard(encoding='evt2', fpath={str(path)!r}).read()"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=5, capture_output=True)
