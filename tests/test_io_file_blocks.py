"""Map-or-copy block reading (DAT and .npy streams): same events both ways, and a file that another
process cuts short mid-stream raises TruncatedFileError at the right offset instead of killing the
process with SIGBUS (which is what touching a map past the new end of file would do)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import eventclip.io._mmap as M
import eventclip.io.prophesee_dat as dat
from eventclip.events import Geometry, make_events
from eventclip.io import TruncatedFileError, open_events, read_events, write_events
from eventclip.io.plain import NpyReader
from tests._io_helpers import same_events

N = 5000


def _events() -> np.ndarray:
    rng = np.random.default_rng(3)
    return make_events(rng.integers(0, 304, N), rng.integers(0, 240, N), rng.integers(0, 2, N),
                       np.sort(rng.integers(0, 1_000_000, N)))


def _open(path, fmt):
    if fmt == "npy":
        return NpyReader(path, block_events=1000)
    return open_events(path)


@pytest.fixture(params=["dat", "npy"])
def recorded(request, tmp_path, monkeypatch):
    monkeypatch.setattr(dat, "BLOCK_RECORDS", 1000)
    path = tmp_path / f"rec.{request.param}"
    write_events(path, _events(), Geometry(304, 240))
    return path, request.param


@pytest.mark.parametrize("use_map", [True, False])
def test_mapped_and_copied_blocks_give_the_same_events(recorded, monkeypatch, use_map):
    path, fmt = recorded
    monkeypatch.setattr(M, "USE_MAP", use_map)
    with _open(path, fmt) as stream:
        got = [c.events if hasattr(c, "events") else c for c in stream]
    assert len(got) == N // 1000
    assert same_events(np.concatenate(got), _events())
    assert same_events(read_events(path).events, _events())


@pytest.mark.parametrize("use_map", [True, False])
def test_a_file_truncated_between_blocks_raises_with_its_offset(recorded, monkeypatch, use_map):
    """Every whole record still in the file is handed over, then TruncatedFileError names where the rest was."""
    path, fmt = recorded
    monkeypatch.setattr(M, "USE_MAP", use_map)
    size = path.stat().st_size
    record = 16 if fmt == "npy" else 8
    data_start = size - N * record
    got = []
    with pytest.raises(TruncatedFileError, match="shrank") as info, _open(path, fmt) as stream:
        for chunk in stream:
            got.append(chunk.events if hasattr(chunk, "events") else chunk)
            if len(got) == 2:
                os.truncate(path, size // 2)  # another process cuts the recording short
    kept = (size // 2 - data_start) // record
    assert same_events(np.concatenate(got), _events()[:kept])
    assert info.value.offset == data_start + kept * record
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("after", "keep"), [(2, 2 / 3), (1, 1 / 3)])
@pytest.mark.parametrize("use_map", [True, False])
@pytest.mark.parametrize("fmt", ["evt3", "evt2", "dat"])
@pytest.mark.parametrize("chunking", [{}, {"n_events": 700}, {"delta_t_us": 30_000}])
def test_streams_of_a_file_cut_short_hand_over_what_was_there_then_raise(tmp_path, monkeypatch, fmt, chunking,
                                                                         use_map, after, keep):
    """RAW streams used to end quietly, as if complete, when the file shrank under them; rechunked
    streams used to drop the events of their last, unfinished chunk when the reader raised. Cut after
    the first chunk, the file ends inside the block a RAW stream has already read ahead: through a
    map, that block must not be decoded from pages no longer in the file (SIGBUS, killing this test
    process)."""
    import eventclip.io.prophesee_raw as raw

    monkeypatch.setattr(M, "USE_MAP", use_map)
    monkeypatch.setattr(raw, "BLOCK_BYTES", 2000)
    monkeypatch.setattr(raw, "MIN_SEGMENT_WORDS", 100)
    monkeypatch.setattr(dat, "BLOCK_RECORDS", 500)
    path = tmp_path / f"rec.{'dat' if fmt == 'dat' else 'raw'}"
    write_events(path, _events(), Geometry(304, 240), format=fmt)
    size = path.stat().st_size
    got, incomplete = [], []
    with pytest.raises(TruncatedFileError, match="shrank") as info, open_events(path, **chunking) as stream:
        for chunk in stream:
            got.append(chunk.events)
            incomplete.append(chunk.meta.get("incomplete", False))
            if len(got) == after:
                os.truncate(path, int(size * keep))
    there = []  # what the shortened file holds, read on its own
    try:
        with open_events(path) as whole:
            there.extend(c.events for c in whole)
    except TruncatedFileError:  # DAT: cut inside a record
        pass
    handed, there = np.concatenate(got), np.concatenate(there)
    assert len(there) > N * keep * 0.7
    assert same_events(handed, _events()[:len(handed)])  # nothing invented, nothing skipped
    if use_map:  # decoded straight from the file as it now is
        assert len(handed) == len(there) and info.value.offset <= int(size * keep)
    else:  # copies may include what was read before the cut
        assert len(handed) >= len(there)
    assert incomplete[:-1] == [False] * (len(got) - 1) and incomplete[-1] == bool(chunking)


@pytest.mark.parametrize("fmt", ["evt3", "evt2"])
def test_raw_streams_give_the_same_events_mapped_and_copied(tmp_path, monkeypatch, fmt):
    import eventclip.io.prophesee_raw as raw

    monkeypatch.setattr(raw, "BLOCK_BYTES", 2000)
    path = tmp_path / "rec.raw"
    write_events(path, _events(), Geometry(304, 240), format=fmt)
    for use_map in (True, False):
        monkeypatch.setattr(M, "USE_MAP", use_map)
        with open_events(path) as stream:
            chunks = [c.events for c in stream]
        assert len(chunks) > 2 and same_events(np.concatenate(chunks), _events())


def test_without_maps_whole_file_reads_copy_too(recorded, monkeypatch):
    """EVENTCLIP_MMAP=0 means no map anywhere: whole-file reads (DAT, RAW) read one copy instead."""
    path, _ = recorded
    monkeypatch.setattr(M, "USE_MAP", False)
    words = M.map_words(path, "<u4", 0, 10)
    assert type(words) is np.ndarray and same_events(read_events(path).events, _events())
    with pytest.raises(TruncatedFileError, match="shrank"):
        M.map_words(path, "<u4", 0, path.stat().st_size)


def test_aedat4_stream_of_a_file_cut_short_says_so(tmp_path):
    """An AEDAT 4.0 packet read short because the file shrank since it was opened is a truncation,
    reported as such after every packet before it (it used to surface as a packet that does not decompress)."""
    from eventclip.io.aedat4 import Aedat4Reader, Aedat4Writer

    path = tmp_path / "rec.aedat4"
    with Aedat4Writer(path, Geometry(304, 240), packet_events=500) as writer:
        writer.write(_events())
    size = path.stat().st_size
    got = []
    with pytest.raises(TruncatedFileError, match="shrank") as info, Aedat4Reader(path, block_events=500) as reader:
        for events in reader:
            got.append(events)
            if len(got) == 1:
                os.truncate(path, size // 2)
    assert info.value.offset < size // 2
    events = np.concatenate(got)
    assert 500 <= len(events) < N and same_events(events, _events()[:len(events)])


@pytest.mark.parametrize("fmt", ["aedat2", "aedat31"])
@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_legacy_aedat_streams_of_a_file_cut_short_say_so(tmp_path, fmt, keep):
    """AEDAT 2.0 used to end quietly with part of the events (or fail with an IndexError on an empty
    read) when the file shrank under it; AEDAT 3.1 reported a cut packet header. Both now hand over
    what is still there, then raise TruncatedFileError saying the file shrank."""
    from eventclip.io.aedat_legacy import Aedat2Reader, Aedat31Reader
    from tests.test_io_aedat_legacy import AEDAT2_HEADER, AEDAT31_HEADER, aedat2_body, aedat31_packet

    rng = np.random.default_rng(5)
    events = make_events(rng.integers(0, 128, N), rng.integers(0, 128, N), rng.integers(0, 2, N),
                         np.sort(rng.integers(0, 1_000_000, N)))
    path = tmp_path / "rec.aedat"
    if fmt == "aedat2":
        path.write_bytes(AEDAT2_HEADER + aedat2_body(events))
        reader = Aedat2Reader(path, block_events=500)
    else:
        path.write_bytes(AEDAT31_HEADER + b"".join(aedat31_packet(events[i:i + 500]) for i in range(0, N, 500)))
        reader = Aedat31Reader(path)
    size = path.stat().st_size
    got = []
    with pytest.raises(TruncatedFileError, match="shrank") as info, reader:
        for chunk in reader:
            got.append(chunk)
            if len(got) == 1:
                os.truncate(path, int(size * keep))
    handed = np.concatenate(got)
    assert len(handed) >= 500 and same_events(handed, events[:len(handed)])
    assert info.value.offset <= int(size * keep)


@pytest.mark.parametrize("chunks", [None, (700,)])
def test_hdf5_stream_of_a_file_cut_short_hands_over_whole_events_then_says_so(tmp_path, monkeypatch, chunks):
    """HDF5 reads the missing bytes of a truncated file as zeros: they used to surface as an event
    'earlier than the event before it'. Now every event still whole in the file (to the event when
    contiguous, to the chunk when chunked) is handed over, then TruncatedFileError."""
    h5py = pytest.importorskip("h5py")
    import eventclip.io.hdf5 as hdf5
    from eventclip.events import EVENT_DTYPE

    monkeypatch.setattr(hdf5, "BLOCK_EVENTS", 1000)
    path = tmp_path / "rec.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["width"], f.attrs["height"] = 304, 240
        events = f.create_group("CD").create_dataset("events", data=_events().astype(EVENT_DTYPE), chunks=chunks)
        data_at = events.id.get_offset() if chunks is None else None
    size = path.stat().st_size
    got = []
    with pytest.raises(TruncatedFileError, match="shrank"), open_events(path) as stream:
        for chunk in stream:
            got.append(chunk.events)
            if len(got) == 1:
                os.truncate(path, size // 2)
    handed = np.concatenate(got)
    assert same_events(handed, _events()[:len(handed)])
    if chunks is None:  # every whole 16-byte event before the cut
        assert len(handed) == (size // 2 - data_at) // 16
    else:
        assert len(handed) % 700 == 0 and len(handed) >= 1000


def test_hdf5_whole_read_of_a_file_cut_short_returns_nothing_and_says_so(tmp_path):
    h5py = pytest.importorskip("h5py")
    from eventclip.events import EVENT_DTYPE
    from eventclip.io.hdf5 import Hdf5Reader

    path = tmp_path / "rec.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["width"], f.attrs["height"] = 304, 240
        f.create_group("CD").create_dataset("events", data=_events().astype(EVENT_DTYPE))
    with Hdf5Reader(path) as reader:
        assert same_events(reader.read_all(), _events())
        os.truncate(path, path.stat().st_size // 2)
        with pytest.raises(TruncatedFileError, match="shrank .*nothing was returned") as info:
            reader.read_all()
    assert info.value.offset == path.stat().st_size
