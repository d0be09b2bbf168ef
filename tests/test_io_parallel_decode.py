"""Segment-parallel EVT 2.0/3.0 decoding gives exactly the sequential result, errors included.

Why: ``read_all`` and the streaming blocks cut the words into segments decoded at the same time,
each from an entry state rebuilt from the words before it and shifted by TIME_HIGH wraps
afterwards. Any slip there (a row, a vector base, a wrap, a seam where time goes back) would
change events silently, so every case here compares ``threads=1`` (one piece) with many segment
counts, up to one segment per word, which puts a boundary at every word (inside vectors, between
a VECT_BASE_X and its VECT_12, right after a TIME_HIGH wrap, ...).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventclip.io.prophesee_raw as raw
from eventclip.io import open_events, read_events, write_events
from eventclip.io._raw_header import read_header
from eventclip.io.errors import EventFormatError
from eventclip.io.prophesee_raw import Evt2Reader, Evt3Reader
from tests._io_helpers import event_streams, same_events
from tests.conftest import recording, run_python
from tests.test_evt_fast_path import _stream, _stream2

READERS = {"evt3": Evt3Reader, "evt2": Evt2Reader}
WORD = {"evt3": "<u2", "evt2": "<u4"}
REAL = [("evt3", "prophesee_evt3_driving_gen41_1280x720.raw"),
        ("evt3", "prophesee_evt3_pedestrians_first5000_gen41_1280x720.raw"),
        ("evt2", "prophesee_evt2_sparklers_gen3_640x480.raw"),
        ("evt2", "prophesee_evt2_spinner_excerpt_gen3_640x480.raw")]


def _outcome(fmt, path, threads):
    """What reading gives: ("ok", events, triggers, skipped) or ("error", type, message, offset)."""
    reader = READERS[fmt](path)
    try:
        events = reader.read_all(threads=threads)
    except EventFormatError as exc:
        return ("error", type(exc), str(exc), exc.offset)
    return ("ok", events, reader.triggers.tolist(), reader.metadata["events_before_time_base"])


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a == b
    return same_events(a[1], b[1]) and a[2:] == b[2:]


def _raw_file(tmp_path, fmt, words, geometry=(48, 48), name="w.raw"):
    path = tmp_path / name
    head = f"% evt {'3.0' if fmt == 'evt3' else '2.0'}\n% geometry {geometry[0]}x{geometry[1]}\n% end\n".encode()
    path.write_bytes(head + np.asarray(words, dtype=WORD[fmt]).tobytes())
    return path


def _check_all_splits(fmt, path, counts):
    ref = _outcome(fmt, path, 1)
    for n in counts:
        got = _outcome(fmt, path, n)
        assert _same(got, ref), f"{path.name}: {n} segments differ from one piece"
    return ref


@pytest.mark.parametrize(("fmt", "name"), REAL)
def test_real_recordings_same_in_any_number_of_segments(fmt, name):
    path = recording(name)
    ref = _check_all_splits(fmt, path, [2, 3, 7, 64])
    assert ref[0] == "ok" and len(ref[1]) > 1000


@pytest.mark.parametrize(("fmt", "name"), [REAL[0], REAL[3]])
def test_real_recordings_streamed_in_parallel_blocks(monkeypatch, fmt, name):
    path = recording(name)
    whole = READERS[fmt](path).read_all(threads=1)
    monkeypatch.setattr(raw, "BLOCK_BYTES", 10_002)  # > 10 blocks (one chunk each), read ahead
    monkeypatch.setattr(raw, "MIN_SEGMENT_WORDS", 1000)
    monkeypatch.setattr(raw, "DECODE_THREADS", 3)

    def one_piece(*_args, **_kwargs):
        raise AssertionError("a valid file's block fell back to one-piece decoding")

    monkeypatch.setattr(raw._RawReader, "_decode_words", one_piece)  # the parallel path must hold by itself
    with open_events(path) as stream:
        blocks = [c.events for c in stream]
    assert len(blocks) > 10 and same_events(np.concatenate(blocks), whole)


def _wrapping_evt3_words(rng, n):
    """Mostly valid EVT 3.0 words whose TIME_HIGH steps by 700 (a wrap every ~6 TIME_HIGH words)."""
    words = _stream(rng, n)
    high = words >> 12 == 0x8
    words[high] = 0x8000 | ((np.cumsum(high)[high] * 700 + 5) & 0xFFF)
    return words


def _wrapping_evt2_words(rng, n):
    """Mostly valid EVT 2.0 words whose TIME_HIGH steps by 2^26 + 3 (a wrap every ~4 TIME_HIGH words)."""
    words = _stream2(rng, n)
    high = words >> 28 == 0x8
    words[high] = 0x80000000 | ((np.cumsum(high)[high] * ((1 << 26) + 3)) & 0x0FFFFFFF)
    return words.astype(np.uint32)


@pytest.mark.parametrize("fmt", ["evt3", "evt2"])
def test_random_streams_with_wraps_and_errors_every_boundary(tmp_path, fmt):
    """Errors mid-stream (geometry, time back, reserved) and wraps, with a boundary at every word."""
    rng = np.random.default_rng(7)
    make = _wrapping_evt3_words if fmt == "evt3" else _wrapping_evt2_words
    kinds = set()
    for i in range(40):
        words = make(rng, int(rng.integers(20, 160)))
        geometry = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
        path = _raw_file(tmp_path, fmt, words, geometry, name=f"r{i}.raw")
        ref = _check_all_splits(fmt, path, [2, 3, 5, len(words) // 3, len(words)])
        kinds.add(ref[0])
    assert kinds == {"ok", "error"}


def _evt3_with_error_in_second_half(tmp_path, bad_word):
    """Valid words (rising TIME_HIGH, rows, a VECT_12), then past the middle one bad word.

    Returns the path and the bad word's byte offset.
    """
    words = []
    for k in range(8):
        words += [0x8000 | (k + 1), 0x6005, 0x0002, 0x3004, 0x4FFF, 0x2003, 0x6007, 0x0003, 0x2001]
    at = 9 * 6 + 8  # before the last ADDR_X of the 7th group
    words.insert(at, bad_word)
    path = _raw_file(tmp_path, "evt3", words, geometry=(32, 32))
    return path, read_header(path).data_offset + 2 * at


@pytest.mark.parametrize(("bad_word", "match"), [(0x9ABC, "reserved"), (0x2030, "outside"), (0x6000, "backwards")])
def test_first_error_in_second_segment_has_its_offset(tmp_path, bad_word, match):
    path, offset = _evt3_with_error_in_second_half(tmp_path, bad_word)
    ref = _outcome("evt3", path, 1)
    assert ref[0] == "error" and match in ref[2]
    # A TIME_LOW going back is legal by itself; the error is at the event after it.
    assert ref[3] == (offset + 2 if match == "backwards" else offset)
    for n in (2, 3, 4, 9):
        assert _same(_outcome("evt3", path, n), ref)


def test_time_going_back_exactly_at_a_seam(tmp_path):
    """The first event of segment 2 is earlier than the last of segment 1: only the seam check sees it."""
    words = [0x8001, 0x6009, 0x0001, 0x2001, 0x2002, 0x6003, 0x2004, 0x2005]
    path = _raw_file(tmp_path, "evt3", words, geometry=(8, 8))
    ref = _outcome("evt3", path, 1)
    assert ref[0] == "error" and "backwards" in ref[2] and ref[3] == read_header(path).data_offset + 2 * 6
    for n in range(2, len(words) + 1):
        assert _same(_outcome("evt3", path, n), ref)


def test_events_before_first_time_high_are_counted_not_shifted(tmp_path):
    words = [0x0001, 0x2001, 0x2002, 0x3000, 0x4003, 0x8001, 0x6002, 0x2003, 0x0002, 0x2004]
    path = _raw_file(tmp_path, "evt3", words, geometry=(8, 8))
    ref = _check_all_splits("evt3", path, range(2, len(words) + 1))
    assert ref[0] == "ok" and ref[3] == 4 and len(ref[1]) == 2


def test_triggers_after_wraps_in_a_later_segment(tmp_path):
    """EXT_TRIGGER times in a segment that could not see earlier wraps are shifted like its events."""
    words = []
    for k in range(12):  # TIME_HIGH rising by 1500: a wrap every ~3 TIME_HIGH words, ~4 in all
        words += [0x8000 | ((k * 1500) & 0xFFF), 0x6000 | k, 0x0001, 0x2002, 0xA100 | (k & 1)]
    path = _raw_file(tmp_path, "evt3", words, geometry=(8, 8))
    ref = _check_all_splits("evt3", path, [2, 5, len(words)])
    assert ref[0] == "ok" and ref[1]["t"][-1] > 4 << 24 and len(ref[2]) == 12


@settings(max_examples=25, deadline=None)
@given(stream=event_streams(max_events=40), fmt=st.sampled_from(["evt3", "evt2"]), n=st.integers(2, 40))
def test_written_streams_with_long_gaps(tmp_path_factory, stream, fmt, n):
    """Files from our writers (long gaps > 2^24 µs, corners, times not starting at 0) in ``n`` segments."""
    events, geometry = stream
    path = tmp_path_factory.mktemp("par") / "x.raw"
    write_events(path, events, geometry, format=fmt)
    assert same_events(READERS[fmt](path).read_all(threads=n), events)
    assert same_events(read_events(path).events, events)


FORK_WHILE_COMPILING = """
import multiprocessing, sys, threading, time
from numba.core.compiler_lock import global_compiler_lock
from eventclip.io.prophesee_raw import Evt3Reader

def held_by_another_thread():
    if global_compiler_lock._lock.acquire(blocking=False):
        global_compiler_lock._lock.release()
        return False
    return True

def count(path):
    return len(Evt3Reader(path).read_all(threads=3))

if __name__ == "__main__":
    path = sys.argv[1]
    first = threading.Thread(target=count, args=(path,))
    first.start()  # its first calls load (or compile) the kernels, under numba's process-wide lock
    deadline = time.monotonic() + 60
    while not held_by_another_thread() and first.is_alive() and time.monotonic() < deadline:
        time.sleep(0.0002)
    print("fork while compiling:", held_by_another_thread(), flush=True)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print("child:", pool.apply(count, (path,)), flush=True)
    first.join()
    print("parent:", count(path), flush=True)
"""


def test_fork_while_another_thread_compiles_kernels():
    """A fork while a decoding thread holds numba's compiler lock (its first blocks load the kernels) gave
    a child whose copy of the lock was held by a thread it does not have: its first kernel call waited
    forever. The fork now waits for the lock. Run in a separate process group, so a hang cannot hang the
    suite (it is killed, and the test fails)."""
    done = run_python(FORK_WHILE_COMPILING, str(recording(REAL[1][1])), timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "fork while compiling: True"  # the fork really met a held lock
    assert lines[1] == "child: 5000" and lines[2] == "parent: 5000"


FORKED_POOL = """
import multiprocessing, sys
import eventclip.io.prophesee_raw as raw
from eventclip.io import open_events
from eventclip.io.prophesee_raw import Evt3Reader

def count(path, threads):
    return len(Evt3Reader(path).read_all(threads=threads))

def fresh_cache_then_stream(path):
    empty_at_start = len(raw._outputs()._arrays)
    with open_events(path) as stream:
        return empty_at_start, sum(len(c) for c in stream)

if __name__ == "__main__":
    path = sys.argv[1]
    raw.BLOCK_BYTES = 4000
    whole = count(path, 2)  # the parent's decode pool exists before the fork
    with open_events(path) as stream:
        kept = [c.events for c in stream]  # the parent's output cache now holds arrays (still in use)
    assert raw._outputs()._arrays
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print(whole, pool.apply(count, (path, 3)), sum(len(k) for k in kept), *pool.apply(fresh_cache_then_stream,
                                                                                          (path,)))
"""


def test_forked_child_decodes_in_parallel_with_its_own_pool_and_cache(tmp_path):
    """A fork-started worker (e.g. a DataLoader's) must not wait on the parent's decode threads, and starts
    its own output cache (the parent's lock may be held at fork time). In its own process group, so a
    hang is killed and fails the test instead of the suite (issue 18: it once hung CI for 11 minutes)."""
    from eventclip.events import Geometry, make_events

    rng = np.random.default_rng(5)
    n = 50_000
    ev = make_events(rng.integers(0, 64, n), rng.integers(0, 48, n), rng.integers(0, 2, n), np.arange(n))
    path = tmp_path / "f.raw"
    write_events(path, ev, Geometry(64, 48), format="evt3")
    done = run_python(FORKED_POOL, str(path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(n), str(n), str(n), "0", str(n)]


@pytest.mark.parametrize(("fmt", "name"), [REAL[1], REAL[3]])
def test_mutated_real_files_same_outcome_in_segments(tmp_path, fmt, name):
    """Bit flips and spliced words in real data: the same events or the same first error, any segment count."""
    src = recording(name)
    data = src.read_bytes()
    start = read_header(src).data_offset
    rng = np.random.default_rng(11)
    kinds = set()
    for i in range(30):
        body = bytearray(data[start:start + 40_000])
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(body)))
            body[pos] ^= 1 << int(rng.integers(0, 8))
        if i % 3 == 0:  # splice a piece of the file in the middle of itself
            a, b = sorted(int(v) for v in rng.integers(0, len(body), 2))
            body[len(body) // 2:len(body) // 2] = body[a:b]
        path = tmp_path / f"m{i}.raw"
        path.write_bytes(data[:start] + bytes(body))
        kinds.add(_check_all_splits(fmt, path, [2, 3, 8, 33])[0])
    assert "error" in kinds


@pytest.mark.parametrize("threads", [1, 2])
def test_stream_reuses_only_arrays_nobody_holds(monkeypatch, threads):
    """Dropped chunks' memory is reused; chunks a caller keeps are never overwritten."""
    path = recording(REAL[0][1])
    whole = Evt3Reader(path).read_all(threads=1)
    monkeypatch.setattr(raw, "BLOCK_BYTES", 10_000)
    monkeypatch.setattr(raw, "MIN_SEGMENT_WORDS", 1000)
    monkeypatch.setattr(raw, "DECODE_THREADS", threads)
    with open_events(path) as stream:  # keep every chunk: all must stay intact and apart
        kept = [c.events for c in stream]
    assert len(kept) > 10 and same_events(np.concatenate(kept), whole)
    assert not any(np.shares_memory(a, b) for a, b in itertools.combinations(kept, 2))
    copies, addresses = [], set()
    with open_events(path) as stream:  # drop every chunk after copying it: memory is reused
        for chunk in stream:
            addresses.add(chunk.events.__array_interface__["data"][0])
            copies.append(chunk.events.copy())
    assert same_events(np.concatenate(copies), whole)
    if raw._REFCOUNT_REUSE:
        assert len(addresses) < len(copies) // 2


def test_output_pool_reuses_only_free_arrays_and_only_where_refcounts_are_trusted(monkeypatch):
    pool = raw._ReusedOutputs(2)
    monkeypatch.setattr(raw, "_REFCOUNT_REUSE", True)
    a = pool.take(100)
    del a
    b = pool.take(100)
    assert b is pool._arrays[0]  # dropped by its user: taken again
    held = pool.take(100)
    assert held is not b and not np.shares_memory(held, b)  # b is still held: never handed out twice
    monkeypatch.setattr(raw, "_REFCOUNT_REUSE", False)
    fresh = raw._ReusedOutputs(2)
    c = fresh.take(100)
    del c
    fresh.take(100)
    assert fresh._arrays == []  # nothing kept, so nothing can be handed out while still in use


def test_output_cache_serves_later_streams_within_its_budget(monkeypatch):
    """Memory a finished block leaves is handed to the next taker (another stream too); beyond the byte
    budget only ``keep`` arrays stay, and never more than MAX_ARRAYS however small."""
    monkeypatch.setattr(raw, "_REFCOUNT_REUSE", True)
    cache = raw._ReusedOutputs(keep=2)
    a = cache.take(1000)
    address = a.ctypes.data
    del a
    assert cache.take(900).ctypes.data == address
    monkeypatch.setattr(raw, "OUTPUT_CACHE_BYTES", 0)
    held = [cache.take(10_000) for _ in range(4)]
    assert len(cache._arrays) == 2 and all(x is held[-2] or x is held[-1] for x in cache._arrays)
    assert not any(np.shares_memory(x, y) for x, y in itertools.combinations(held, 2))
    monkeypatch.setattr(raw, "OUTPUT_CACHE_BYTES", 1 << 40)
    held += [cache.take(10) for _ in range(raw._ReusedOutputs.MAX_ARRAYS + 5)]
    assert len(cache._arrays) == raw._ReusedOutputs.MAX_ARRAYS


def test_streams_in_several_threads_share_the_output_cache_safely(tmp_path, monkeypatch):
    """Streams of one process share one output cache: threads streaming at once (each keeping some
    chunks, dropping others) must each get exactly the file's events."""
    from concurrent.futures import ThreadPoolExecutor

    from eventclip.events import Geometry, make_events

    rng = np.random.default_rng(7)
    n = 300_000
    ev = make_events(rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 40_000_000, n)))
    path = tmp_path / "shared.raw"
    write_events(path, ev, Geometry(640, 480), format="evt3")
    monkeypatch.setattr(raw, "BLOCK_BYTES", 20_000)
    monkeypatch.setattr(raw, "MIN_SEGMENT_WORDS", 1000)

    def stream(k: int) -> np.ndarray:
        copies = []
        with open_events(path) as s:
            for i, chunk in enumerate(s):
                copies.append(chunk.events if (i + k) % 3 == 0 else chunk.events.copy())
        return np.concatenate(copies)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(stream, range(8)))
    assert all(same_events(r, ev) for r in results)


def test_decode_threads_come_from_the_setting_then_the_environment(monkeypatch):
    monkeypatch.setattr(raw, "DECODE_THREADS", None)
    monkeypatch.setenv("EVENTCLIP_DECODE_THREADS", "3")
    assert raw.decode_threads() == 3
    monkeypatch.setattr(raw, "DECODE_THREADS", 2)
    assert raw.decode_threads() == 2
    monkeypatch.setattr(raw, "DECODE_THREADS", None)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("EVENTCLIP_DECODE_THREADS", bad)
        with pytest.raises(ValueError, match="EVENTCLIP_DECODE_THREADS"):
            raw.decode_threads()
    monkeypatch.delenv("EVENTCLIP_DECODE_THREADS")
    assert raw.decode_threads() >= 1
