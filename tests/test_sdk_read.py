"""Our Prophesee decoders against the REAL Metavision SDK (OpenEB 5.1.1) on every shared recording.

The SDK is the camera vendor's own decoder, so it is the oracle for these formats: RAW EVT 2.0 and
EVT 3.0 through its three Python routes (SDK 5 ``Camera.from_file`` + ``CameraStreamSlicer``, the SDK 4
style ``EventsIterator`` and ``RawReader``), and DAT through ``EventsIterator``'s own reader. Each
route is read with the SDK's time shift off and must give exactly our events; the shift it applies by
default is checked against the rule docs/sensors.md states.
"""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.io import read_events
from eventclip.io._raw_header import read_header
from tests._io_helpers import same_events
from tests._sdk import SDK_READERS, copy_recording, events_iterator

pytestmark = pytest.mark.sdk

EVT2_FILES = ["prophesee_evt2_sparklers_gen3_640x480.raw", "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"]
EVT3_FILES = ["prophesee_evt3_driving_gen41_1280x720.raw", "prophesee_evt3_pedestrians_first5000_gen41_1280x720.raw"]
DAT_FILES = ["ncars_obj_004397_td.dat", "ncars_tonic_sample.dat"]


@pytest.mark.parametrize("route", SDK_READERS)
@pytest.mark.parametrize("name", EVT2_FILES + EVT3_FILES)
def test_every_sdk_route_decodes_each_raw_recording_exactly_like_ours(tmp_path, name, route):
    path = copy_recording(name, tmp_path)
    ours = read_events(path).events
    theirs = SDK_READERS[route](path)
    assert len(ours) > 1000
    assert same_events(theirs, ours)


def _first_time_high(path) -> int:
    """The payload of the file's first TIME_HIGH word (EVT 2.0: t >> 6; EVT 3.0: bits 12-23 of t)."""
    encoding = read_header(path).inferred_encoding()
    word_type = np.dtype("<u4") if encoding == "evt2" else np.dtype("<u2")
    words = np.fromfile(path, dtype=word_type, offset=read_header(path).data_offset)
    if encoding == "evt2":
        return int(words[np.argmax(words >> 28 == 0x8)] & 0x0FFFFFFF)
    return int(words[np.argmax(words >> 12 == 0x8)] & 0xFFF)


@pytest.mark.parametrize("name", EVT2_FILES + EVT3_FILES)
def test_sdk_default_time_shift_is_the_documented_constant(tmp_path, name):
    """By default the SDK subtracts one constant per file: EVT 2.0 first TIME_HIGH << 6, EVT 3.0
    (first TIME_HIGH - 1) << 12. x, y, p are untouched."""
    from metavision_core.event_io import EventsIterator

    path = copy_recording(name, tmp_path)
    ours = read_events(path).events
    shifted = np.concatenate([ev.copy() for ev in EventsIterator(str(path), mode="n_events", n_events=1 << 20)])
    high = _first_time_high(path)
    expected = high << 6 if name in EVT2_FILES else (high - 1) << 12
    assert expected > 0
    for field in "xyp":
        np.testing.assert_array_equal(shifted[field], ours[field])
    np.testing.assert_array_equal(ours["t"] - shifted["t"], np.full(len(ours), expected))


@pytest.mark.parametrize("name", DAT_FILES)
def test_sdk_events_iterator_reads_dat_exactly_like_ours(tmp_path, name):
    """The SDK reads DAT only through EventsIterator's Python reader (its Camera does not open DAT)."""
    path = copy_recording(name, tmp_path)
    ours = read_events(path).events
    assert len(ours) > 1000
    assert same_events(events_iterator(path), ours)
