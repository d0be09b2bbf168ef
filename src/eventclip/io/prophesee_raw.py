"""Prophesee RAW files: EVT 2.0 (read/write), EVT 2.1 (read) and EVT 3.0 (read/write).

A RAW file is an ASCII ``%`` header (see :mod:`eventclip.io._raw_header`) followed by event words:
32-bit for EVT 2.0, 64-bit for EVT 2.1, 16-bit for EVT 3.0, little-endian. Decoding is done in
blocks of ``BLOCK_BYTES`` by the numba kernels in :mod:`eventclip.io._evt_kernels`, with the
decoder state (time base, wrap count, row, vector base) carried from block to block, so memory
stays bounded whatever the file size.

EVT 2.0 and 3.0 blocks (and whole-file reads) are cut into segments decoded at the same time by
``DECODE_THREADS`` threads (the kernels release the GIL): a first parallel pass counts each
segment's events, which gives every segment its output offset; its entry state comes from the
last words of each kind before it, and its times are shifted by whole TIME_HIGH wraps once the
segment before it is done (see :func:`eventclip.io._evt_kernels.evt3_state_before`). When the
segments do not join exactly (a bad word, events before the first TIME_HIGH, time going backwards
across a seam) the block is decoded again in one piece, which reports the first problem in file
order with its byte offset, so results and errors never depend on the number of threads.

Timestamps are exact and unbounded: EVT 2.x time is TIME_HIGH (28 bits) << 6 | 6-bit low (34
bits, ~4.8 h) and EVT 3.0 time is TIME_HIGH (12 bits) << 12 | TIME_LOW (12 bits) (24 bits,
~16.8 s); a TIME_HIGH that drops by more than half its range counts as a wrap and adds 2^34
(resp. 2^24) µs. CD events that arrive before the first TIME_HIGH have no time base: they are
counted in ``metadata['events_before_time_base']`` (and logged), not invented.
External trigger events are kept in ``reader.triggers`` (fields t µs, id, p).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from eventclip.events import EVENT_DTYPE, TRIGGER_DTYPE, Geometry, as_events
from eventclip.io import _evt_kernels as K
from eventclip.io._mmap import map_open, map_words, records_present
from eventclip.io._raw_header import RawHeader, format_header, parse_header, read_header, resolve_geometry
from eventclip.io.base import EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, file_shrank

log = logging.getLogger(__name__)

BLOCK_BYTES = 2 << 20
"""Bytes of event words decoded per block and thread (2 MiB: ~1 M EVT 3.0 events, 8-16 MiB of output).

Why this size: large enough that a block's fixed costs (thread hand-offs, one chunk) are a small
share of it, small enough that the output arrays a stream cycles through (see ``_ReusedOutputs``)
stay tens of MiB. Measured on 2 cores (EVT 3.0, 20 M events): 1, 2 and 4 MiB per thread within
the noise of each other, 256 KiB 25 % slower."""

DECODE_THREADS: int | None = None
"""Threads decoding one EVT 2.0/3.0 block or file at once; None: see :func:`decode_threads`."""

MIN_SEGMENT_WORDS = 1 << 18
"""Fewest words worth a thread of their own (~1 ms of decoding); smaller inputs stay in one piece."""

SEGMENTS_PER_THREAD = 4
"""Segments per decoding thread in a stream block: the work is shared out a segment at a time."""

MAX_COORD = 2048
"""EVT 2.x/3.0 addresses are 11 bits: sensors up to 2048x2048."""

TRIGGER_BLOCK = 1 << 16
"""Trigger events buffered per decoder call; the kernel returns early when the buffer fills."""


def decode_threads() -> int:
    """How many threads decode a block: ``DECODE_THREADS``, else ``EVENTCLIP_DECODE_THREADS`` from the
    environment (for processes that share the cores, e.g. several loaders), else the CPUs this process may run on."""
    if DECODE_THREADS is not None:
        return max(1, int(DECODE_THREADS))
    env = os.environ.get("EVENTCLIP_DECODE_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"EVENTCLIP_DECODE_THREADS must be a whole number of threads >= 1, got {env!r}; "
                             "unset it to use every CPU")
        return int(env)
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset/cgroup CPU sets
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """Worker threads shared by all readers; the calling thread decodes the first segment itself."""
    return ThreadPoolExecutor(max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="eventclip-decode")


# A forked child (e.g. a fork-started DataLoader worker) inherits the pool object but not its
# threads: work submitted there would wait forever, so the child starts a pool of its own.
if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_pool.cache_clear)


def _run_shared(fn: Callable[[int], object], n: int, first: Callable[[], object] | None = None) -> list:
    """``[fn(k) for k in range(n)]``, with this thread and the pool's workers each taking the next ``k``.

    This thread runs ``first()`` before it joins in, so other work (a stream reading its next
    block) overlaps the decoding and the load still balances: whoever is free takes the next
    segment. The ticket is drawn under a lock, so no interpreter detail is relied on.
    """
    results: list = [None] * n
    tickets = iter(range(n))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                k = next(tickets, None)
            if k is None:
                return
            results[k] = fn(k)

    workers = [_pool().submit(work) for _ in range(min(decode_threads(), n) - 1)]
    try:
        if first is not None:
            first()
        work()
    finally:
        for f in workers:
            f.result()
    return results


def _even_bounds(n: int, parts: int) -> list[int]:
    """Cut points of ``n`` words into ``parts`` nearly equal segments (``parts + 1`` indices from 0 to n)."""
    return [n * k // parts for k in range(parts + 1)]


class _Block(NamedTuple):
    """A stream block as read: its words, segment cut points, each segment's event count, words read,
    and words asked for (more than read only when the file shrank after it was opened)."""

    words: np.ndarray
    bounds: list[int]
    counts: list[int]
    n_read: int
    wanted: int


def _trigger_array(trig: np.ndarray, nt: int) -> np.ndarray:
    tr = np.empty(nt, dtype=TRIGGER_DTYPE)
    tr["t"], tr["id"], tr["p"] = trig[:nt, 0], trig[:nt, 1], trig[:nt, 2]
    return tr


_REFCOUNT_REUSE = (sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 13)
                   and getattr(sys, "_is_gil_enabled", lambda: True)())
"""Whether :class:`_ReusedOutputs` may judge by ``sys.getrefcount`` (see :meth:`_ReusedOutputs.take`)."""


OUTPUT_CACHE_BYTES = 128 << 20
"""Bytes of stream output arrays this process keeps for later blocks and later streams (0: only the
few one stream needs at a time). Why: a stream that starts with fresh arrays pays the kernel's page
zeroing for its first blocks (measured: ~1000 minor faults, 15-20 % of a 20 M-event EVT 2.0 stream's
time with two threads), which a program opening many files (a dataset loader, a looping replay) would
pay on every file."""

BLOCK_THREADS_MAX = 4
"""A stream block holds ``BLOCK_BYTES`` per decoding thread, for at most this many threads, so that
its output array (16 bytes per event) stays tens of MiB however many cores the machine has."""


class _ReusedOutputs:
    """Event arrays for stream blocks, shared by every RAW stream of the process, each reused once
    nobody holds a view of it.

    An array is taken again only when nothing but this cache refers to it: every numpy view holds
    a reference to the array that owns its memory, so ``sys.getrefcount`` sees any chunk, slice
    or tensor a caller still keeps, and such data is never overwritten. Streams in several threads
    may share it: arrays are looked at and handed out under a lock.
    """

    MAX_ARRAYS = 16
    """Most arrays kept, however small (each ``take`` looks at them all)."""

    def __init__(self, keep: int = 3) -> None:
        """``keep``: arrays kept whatever their size (one stream's block being decoded, the chunk its
        consumer holds, and a spare); more are kept while they fit in ``OUTPUT_CACHE_BYTES``."""
        self._keep = max(2, keep)
        self._arrays: list[np.ndarray] = []  # least recently handed out first; indexed, not enumerate()d,
        # because enumerate's cached result tuple would hold one more reference to an array
        self._lock = threading.Lock()

    def take(self, n: int) -> np.ndarray:
        """An EVENT_DTYPE array of at least ``n`` events that nobody else refers to.

        Reuse is limited to the CPython versions whose reference counting this was checked on
        (3.10-3.13, with the GIL): newer interpreters may not count a local name or a call argument
        (borrowed references), which would make a chunk a consumer still holds look free.
        """
        if not _REFCOUNT_REUSE:
            return np.empty(n, dtype=EVENT_DTYPE)
        with self._lock:
            for k in reversed(range(len(self._arrays))):  # most recently used first: its lines may still be cached
                arr = self._arrays[k]
                if len(arr) >= n and sys.getrefcount(arr) <= 3:  # the list, ``arr`` and the call's argument
                    self._arrays.append(self._arrays.pop(k))
                    return arr
            arr = np.empty(n + n // 8, dtype=EVENT_DTYPE)  # slack, so that later blocks fit
            self._arrays.append(arr)
            while len(self._arrays) > self._keep and (len(self._arrays) > self.MAX_ARRAYS or sum(
                    a.nbytes for a in self._arrays) > OUTPUT_CACHE_BYTES):
                self._arrays.pop(0)  # freed once no chunk refers to it
            return arr


@lru_cache(maxsize=1)
def _outputs() -> _ReusedOutputs:
    """The process's stream output cache (a forked child starts its own: the lock may be held)."""
    return _ReusedOutputs()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_outputs.cache_clear)


class _RawReader(EventReader):
    """Shared block loop of the three RAW decoders; subclasses set the word type and the kernel."""

    encoding = ""
    word_dtype: np.dtype = np.dtype("<u4")
    events_per_word_estimate = 1
    max_events_per_word = 1
    high_bits = 0
    """Bits of the TIME_HIGH counter, for segment planning; 0: this encoding is decoded in one piece."""
    low_bits = 0
    """Bits of time below the TIME_HIGH counter (µs)."""

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        try:
            self.header: RawHeader = read_header(self.path)
        except OSError as exc:
            raise EventFormatError(f"cannot open RAW file: {exc.strerror or exc}", self.path) from exc
        stated = self.header.encoding()
        if stated is not None and stated != self.encoding:
            raise EventFormatError(
                f"the header says the data is {stated} but it is being read as {self.encoding}; "
                f"read it with format='{stated}'",
                self.path,
                0,
            )
        self.geometry, source = resolve_geometry(self.header, geometry, self.path)
        if self.geometry.width > MAX_COORD or self.geometry.height > MAX_COORD:
            raise GeometryError(f"geometry {self.geometry} exceeds the {MAX_COORD}x{MAX_COORD} that EVT can address",
                                self.path, 0)
        self._triggers: list[np.ndarray] = []
        self.metadata = {
            "encoding": self.encoding,
            "header": dict(self.header.fields),
            "data_offset": self.header.data_offset,
            "geometry_source": source,
            "events_before_time_base": 0,
        }

    @property
    def triggers(self) -> np.ndarray:
        """External trigger events decoded so far (all of them once iteration has finished)."""
        if not self._triggers:
            return np.empty(0, dtype=TRIGGER_DTYPE)
        return np.concatenate(self._triggers)

    def _words(self, raw: np.ndarray) -> np.ndarray:
        """Turn the block as read into what the kernel takes (EVT 2.1 reorders halves)."""
        return raw

    def _decode(self, words, out, trig, state, width, height):  # pragma: no cover - abstract
        raise NotImplementedError

    def _count(self, words: np.ndarray) -> int:  # pragma: no cover - abstract
        """An upper bound on the CD events in ``words`` (exact unless a word is bad or some precede the first
        TIME_HIGH)."""
        raise NotImplementedError

    def _state_before(self, words: np.ndarray, end: int, state: np.ndarray) -> None:  # pragma: no cover - abstract
        """Set ``state`` (entry values for ``words[0]``) to the decoder state at ``words[end]``, up to
        TIME_HIGH wraps."""
        raise NotImplementedError

    def _error(self, code: int, offset: int, word: int) -> EventFormatError:
        enc = self.encoding.upper()
        if code == K.ERR_OUTSIDE_GEOMETRY:
            return GeometryError(
                f"an event lies outside the sensor geometry {self.geometry} "
                f"({self.metadata['geometry_source']}); pass the right geometry, or the data is corrupt",
                self.path,
                offset,
            )
        if code == K.ERR_TIME_BACKWARDS:
            return EventFormatError(f"event time goes backwards (corrupt {enc} data)", self.path, offset)
        return EventFormatError(
            f"word {word:#x} has a type reserved in {enc}; the data is corrupt or not {enc}", self.path, offset
        )

    def _layout(self) -> tuple[int, int, int]:
        """(data offset, number of whole words, bytes of a trailing partial word)."""
        size = self.path.stat().st_size
        if size == 0:
            raise EventFormatError("the file is empty (not even a RAW header)", self.path, 0)
        start = self.header.data_offset
        ws = self.word_dtype.itemsize
        return start, (size - start) // ws, (size - start) % ws

    def _decode_words(self, words: np.ndarray, first_word: int, state: np.ndarray, out: np.ndarray | None = None
                      ) -> Iterator[np.ndarray]:
        """Decode ``words`` (file word index ``first_word`` onwards), yielding event arrays.

        At a bad word the events decoded before it are yielded first, then the error is raised.

        With ``out`` (big enough for every event, e.g. sized by ``_count``) all events go into it
        and the filled prefixes are yielded; otherwise fresh buffers are allocated as needed.
        """
        ws = self.word_dtype.itemsize
        width, height = self.geometry.width, self.geometry.height
        trig = np.empty((min(len(words), TRIGGER_BLOCK), 3), dtype=np.int64)
        pos = filled = 0
        while pos < len(words):
            if out is None:
                cap = (len(words) - pos) * self.events_per_word_estimate + self.max_events_per_word
                block = np.empty(cap, dtype=EVENT_DTYPE)
            else:
                block = out[filled:]
            n, used, nt, err, at = self._decode(words[pos:], block.view(np.int64).reshape(-1, 2), trig, state,
                                                width, height)
            if nt:
                self._triggers.append(_trigger_array(trig, nt))
            if err:
                if n:  # the events before the bad word are valid: hand them over, then raise
                    yield block[:n]
                offset = self.header.data_offset + (first_word + pos + at) * ws
                raise self._error(err, offset, int(words[pos + at]))
            if used == 0 and n == 0 and nt == 0:
                raise RuntimeError(f"{self.path}: decoder made no progress at word {first_word + pos}")
            pos += used
            filled += n
            if n:
                yield block[:n]

    def _segment_count(self, n_words: int, threads: int | None) -> int:
        if not self.high_bits:
            return 1
        if threads is not None:
            return max(1, min(int(threads), n_words))
        return max(1, min(decode_threads(), n_words // MIN_SEGMENT_WORDS))

    def _stream_segment_count(self, n_words: int) -> int:
        """Segments of a stream block: ``SEGMENTS_PER_THREAD`` per thread, so that the thread that also
        reads the next block can take fewer of them; one when decoding is single-threaded."""
        threads = decode_threads() if self.high_bits else 1
        if threads == 1:
            return 1
        return max(1, min(threads * SEGMENTS_PER_THREAD, n_words // (MIN_SEGMENT_WORDS // SEGMENTS_PER_THREAD)))

    def _entry(self, words: np.ndarray, bounds: list[int], k: int, state: np.ndarray) -> np.ndarray:
        """Decoder state on entry to segment ``k`` of ``words`` cut at ``bounds``, up to TIME_HIGH wraps.

        Segment 0 starts from ``state``; a later one from the last words of each kind before it
        (its last event time stays a valid lower bound from ``state``; seams are checked in
        ``_join``). Each segment's thread computes its own: the backward scan for the last
        TIME_HIGH can be long (real EVT 3.0 files hold one per ~100 000 words).
        """
        entry = state.copy()
        if k:
            self._state_before(words, bounds[k], entry)
        return entry

    def _decode_all(self, words: np.ndarray, bounds: list[int], dsts: list[np.ndarray], state: np.ndarray,
                    first: Callable[[], object] | None = None) -> tuple[list, list[np.ndarray], list[int]]:
        """Decode the segments of ``words`` (cut at ``bounds``) into ``dsts`` at once (see ``_run_shared``).

        Returns (``_decode_segment`` results, entry states, TIME_HIGH each entry assumed) for ``_join``.
        """
        entries: list = [None] * len(dsts)
        assumed_high = [0] * len(dsts)

        def one(k: int) -> tuple[int, bool, list[np.ndarray]]:
            entries[k] = self._entry(words, bounds, k, state)
            assumed_high[k] = int(entries[k][K.S_TIME_HIGH])  # before decoding moves it on
            return self._decode_segment(words[bounds[k]:bounds[k + 1]], dsts[k], entries[k])

        decoded = _run_shared(one, len(dsts), first)
        return decoded, entries, assumed_high

    def _join(self, parts: list[np.ndarray], results: list[tuple[int, bool, list[np.ndarray], int]],
              entries: list[np.ndarray], assumed_high: list[int], state: np.ndarray) -> list[np.ndarray] | None:
        """Check and fix up decoded segments in file order; update ``state``; return their trigger arrays.

        ``parts[k]`` holds segment k's events, ``results[k]`` is (events, no error, triggers, count).
        Each segment's times move by the TIME_HIGH wraps it could not see. Returns None when the
        segments do not join exactly (an error in a segment, events before the first TIME_HIGH, time
        going backwards across a seam); the caller then decodes in one piece, which reports the
        first problem.
        """
        high, last_t = int(state[K.S_TIME_HIGH]), int(state[K.S_LAST_T])
        triggers: list[np.ndarray] = []
        for k, (part, (n, ok, trig, count)) in enumerate(zip(parts, results, strict=True)):
            if not ok or n != count:
                return None
            shift = (high - assumed_high[k]) << self.low_bits  # whole wraps this segment could not see
            if shift:
                part["t"] += shift
                for tr in trig:
                    tr["t"] += shift
                entries[k][K.S_TIME_HIGH] += shift >> self.low_bits
                if n:
                    entries[k][K.S_LAST_T] += shift
            if n and part["t"][0] < last_t:
                return None
            if n:
                last_t = int(entries[k][K.S_LAST_T])
            high = int(entries[k][K.S_TIME_HIGH])
            triggers.extend(trig)
        state[:] = entries[-1]
        state[K.S_LAST_T] = last_t
        return triggers

    def _decode_segments(self, words: np.ndarray, state: np.ndarray, n_seg: int
                         ) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """Decode ``words`` as ``n_seg`` segments at once into one array, from decoder ``state``.

        Two parallel passes: count each segment's events (its offset in the array), then decode.
        Returns (events, trigger arrays) with ``state`` updated, or None (see ``_join``).
        """
        bounds = _even_bounds(len(words), n_seg)
        counts = [int(c) for c in _run_shared(lambda k: self._count(words[bounds[k]:bounds[k + 1]]), n_seg)]
        return self._decode_counted(words, bounds, counts, state, lambda n: np.empty(n, dtype=EVENT_DTYPE))

    def _decode_counted(self, words: np.ndarray, bounds: list[int], counts: list[int], state: np.ndarray,
                        alloc: Callable[[int], np.ndarray], first: Callable[[], object] | None = None
                        ) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """Decode counted segments into one array from ``alloc(n)`` and join them (see ``_join``).

        ``first`` runs in this thread while the others decode (see ``_run_shared``). Returns
        (events, trigger arrays), or None when the segments do not join.
        """
        starts = np.cumsum([0, *counts]).tolist()
        out = alloc(starts[-1] + self.max_events_per_word)
        dsts = [out[a:b] for a, b in pairwise(starts[:-1])] + [out[starts[-2]:]]
        decoded, entries, assumed_high = self._decode_all(words, bounds, dsts, state, first)
        results = [(*r, c) for r, c in zip(decoded, counts, strict=True)]
        triggers = self._join([out[a:b] for a, b in pairwise(starts)], results, entries, assumed_high, state)
        return None if triggers is None else (out[:starts[-1]], triggers)

    def _decode_segment(self, words: np.ndarray, dst: np.ndarray, state: np.ndarray
                        ) -> tuple[int, bool, list[np.ndarray]]:
        """Decode one segment into ``dst`` (sized by ``_count``): (events, no error, trigger arrays).

        The kernels need ``max_events_per_word`` free slots to go on, so the last few events of
        a segment are decoded into a small spare buffer and copied, never past ``dst``.
        """
        width, height = self.geometry.width, self.geometry.height
        flat = dst.view(np.int64).reshape(-1, 2)
        trig = np.empty((min(len(words), TRIGGER_BLOCK), 3), dtype=np.int64)
        parts: list[np.ndarray] = []
        pos = filled = 0
        while pos < len(words):
            room = len(flat) - filled
            spare = None if room >= self.max_events_per_word else np.empty((room + self.max_events_per_word, 2),
                                                                           dtype=np.int64)
            n, used, nt, err, _ = self._decode(words[pos:], flat[filled:] if spare is None else spare, trig, state,
                                               width, height)
            if nt:
                parts.append(_trigger_array(trig, nt))
            if err:
                return filled, False, parts
            if spare is not None:
                flat[filled:filled + n] = spare[:n]
            pos += used
            filled += n
        return filled, True, parts

    def _decode_block(self, block: _Block, first_word: int, state: np.ndarray, pool: _ReusedOutputs,
                      read_ahead: Callable[[], object]) -> Iterator[np.ndarray]:
        """Decode one block (segments at once where possible, else in one piece), yielding event arrays.

        The block's segments were counted when it was read; its events go into one array from
        ``pool``. ``read_ahead`` is called once, while the other threads decode (before the
        one-piece path).
        """
        if self.high_bits:
            got = self._decode_counted(block.words, block.bounds, block.counts, state, pool.take, read_ahead)
            if got is not None:
                events, triggers = got
                self._triggers.extend(triggers)
                if len(events):
                    yield events
                return
        else:
            read_ahead()
        yield from self._decode_words(block.words, first_word, state)

    def _finish(self, state: np.ndarray, tail: int) -> None:
        self.metadata["events_before_time_base"] = int(state[K.S_SKIPPED])
        if state[K.S_SKIPPED]:
            log.warning("%s: %d CD events before the first TIME_HIGH word have no time base and were not decoded",
                        self.path, state[K.S_SKIPPED])
        if tail:
            ws = self.word_dtype.itemsize
            raise TruncatedFileError(
                f"the file ends {tail} byte(s) into a {ws}-byte {self.encoding.upper()} word; "
                "the recording was cut short (all complete words before it were decoded)",
                self.path,
                self.path.stat().st_size - tail,
            )

    def _read_block(self, fh: BinaryIO, words_at: int, want: int, buf: np.ndarray, mapped: np.ndarray | None
                    ) -> _Block:
        """The next ``want`` words (from word ``words_at``), cut into segments and counted (see ``_Block``).

        From the map of the file's words when there is one (after checking the file still holds
        them, see :mod:`eventclip.io._mmap`), else read into ``buf``."""
        ws = self.word_dtype.itemsize
        if want <= 0:
            raw = buf[:0]
        elif mapped is not None:
            raw = mapped[words_at:words_at + records_present(fh, self.header.data_offset + words_at * ws, want, ws)]
        else:
            raw = buf[:fh.readinto(buf[:want].view(np.uint8)) // ws]
        words = self._words(raw)
        bounds = _even_bounds(len(words), self._stream_segment_count(len(words)))
        counts = [self._count(words[a:b]) for a, b in pairwise(bounds)] if self.high_bits else []
        return _Block(words, bounds, counts, len(raw), max(want, 0))

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode block after block. While the threads decode one block, this thread reads and counts
        the next: from a map of the file (see :mod:`eventclip.io._mmap`), or into the other of two
        word buffers (read into again and again: no page faults) when maps are off."""
        start, n_words, tail = self._layout()
        ws = self.word_dtype.itemsize
        threads = min(decode_threads(), BLOCK_THREADS_MAX) if self.high_bits else 1
        block_words = BLOCK_BYTES // ws * threads
        state = K.new_decoder_state()
        pool = _outputs()
        with self.path.open("rb") as fh:
            mapped = map_open(fh, self.word_dtype, start, (n_words,))
            bufs = [np.empty(0 if mapped is not None else min(block_words, n_words), dtype=self.word_dtype)
                    for _ in range(2)]
            fh.seek(start)
            done = 0
            block = self._read_block(fh, 0, min(block_words, n_words), bufs[0], mapped)
            spare = 1  # the word buffer the next block is read into
            while block.n_read:
                if mapped is not None and records_present(fh, start + done * ws, block.n_read, ws) < block.n_read:
                    block = self._read_block(fh, done, block.wanted, bufs[0], mapped)  # shrank since read ahead
                    if not block.n_read:
                        break
                ahead: list[_Block] = []
                after = done + block.n_read

                def read_ahead(buf: np.ndarray = bufs[spare], after: int = after, ahead: list[_Block] = ahead) -> None:
                    ahead.append(self._read_block(fh, after, min(block_words, n_words - after), buf, mapped))

                yield from self._decode_block(block, done, state, pool, read_ahead)
                if block.n_read < block.wanted:
                    break
                done, block, spare = after, ahead[0], 1 - spare
        if block.n_read < block.wanted:
            raise file_shrank(self.path, start + (done + block.n_read) * ws)
        self._finish(state, tail)

    def read_all(self, threads: int | None = None) -> np.ndarray:
        """Decode the whole file into one array: count the events first, then decode in place (no copies).

        ``threads`` (EVT 2.0/3.0) sets the number of segments decoded at once (default: see
        ``decode_threads``, one piece for files under ``MIN_SEGMENT_WORDS`` words per thread).
        The words are memory-mapped unless maps are off (see :mod:`eventclip.io._mmap`).
        """
        start, n_words, tail = self._layout()
        words = self._words(map_words(self.path, self.word_dtype, start, n_words))
        state = K.new_decoder_state()
        got = self._decode_segments(words, state, self._segment_count(n_words, threads)) if self.high_bits else None
        if got is None:
            state = K.new_decoder_state()
            out = np.empty(self._count(words) + self.max_events_per_word, dtype=EVENT_DTYPE)
            events = out[:sum(len(b) for b in self._decode_words(words, 0, state, out))]
        else:
            events, triggers = got
            self._triggers.extend(triggers)
        self._finish(state, tail)
        return events


class Evt2Reader(_RawReader):
    """EVT 2.0: one 32-bit word per CD event."""

    format_name = "evt2"
    encoding = "evt2"
    word_dtype = np.dtype("<u4")

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt2(words, out, trig, state, width, height)

    high_bits = K.EVT2_HIGH_BITS
    low_bits = 6

    def _count(self, words: np.ndarray) -> int:
        return int(K.count_evt2(words))

    def _state_before(self, words: np.ndarray, end: int, state: np.ndarray) -> None:
        K.evt2_state_before(words, end, state)


class Evt21Reader(_RawReader):
    """EVT 2.1: 64-bit words, each a row segment of up to 32 same-polarity pixels.

    Byte order, as the Metavision SDK reads it (checked against OpenEB 5.1.1): ``% format
    EVT21;endianness=little`` files store a little-endian 64-bit word; ``endianness=legacy`` files,
    and files whose format names no endianness (what older Metavision versions wrote), store its high
    32-bit half then its low half, each little-endian.
    """

    format_name = "evt21"
    encoding = "evt21"
    word_dtype = np.dtype("<u8")
    events_per_word_estimate = 2
    max_events_per_word = 32

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        endianness = self.header.format_fields.get("endianness", "legacy").lower()
        if endianness not in ("legacy", "little"):
            raise EventFormatError(f"'% format' says endianness={endianness}; EVT 2.1 files are 'little' or "
                                   "'legacy' (the default when the header names none)", self.path, 0)
        self.legacy = endianness == "legacy"
        self.metadata["endianness"] = endianness

    def _words(self, raw: np.ndarray) -> np.ndarray:
        if not self.legacy:
            return raw
        halves = raw.view("<u4").reshape(-1, 2)
        return (halves[:, 0].astype(np.uint64) << np.uint64(32)) | halves[:, 1].astype(np.uint64)

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt21(words, out, trig, state, width, height)

    def _count(self, words: np.ndarray) -> int:
        return int(K.count_evt21(words))


class Evt3Reader(_RawReader):
    """EVT 3.0: 16-bit words with row/time state and 8/12-pixel vectors."""

    format_name = "evt3"
    encoding = "evt3"
    word_dtype = np.dtype("<u2")
    events_per_word_estimate = 2
    max_events_per_word = 12

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt3(words, out, trig, state, width, height)

    high_bits = K.EVT3_HIGH_BITS
    low_bits = 12

    def _count(self, words: np.ndarray) -> int:
        return int(K.count_evt3(words))

    def _state_before(self, words: np.ndarray, end: int, state: np.ndarray) -> None:
        K.evt3_state_before(words, end, state)


class _RawWriter(EventWriter):
    """Writes the header at open, then encoded words per ``write`` call; the encoder state persists."""

    encoding = ""
    word_dtype: np.dtype = np.dtype("<u4")
    words_per_event = 1

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        if geometry.width > MAX_COORD or geometry.height > MAX_COORD:
            raise GeometryError(f"geometry {geometry} exceeds the {MAX_COORD}x{MAX_COORD} that EVT can address", path)
        self._state = K.new_encoder_state()
        self._written = 0
        self._fh = self.path.open("wb")
        self._fh.write(format_header(self.encoding, geometry))

    def _encode(self, x, y, p, t, out, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, events: np.ndarray) -> None:
        if self._fh is None:
            raise ValueError(f"{self.path}: writer is closed")
        events = as_events(events)
        n = len(events)
        if n == 0:
            return
        bad = (events["x"] >= self.geometry.width) | (events["y"] >= self.geometry.height)
        if bad.any():
            i = int(np.argmax(bad))
            raise GeometryError(
                f"event {self._written + i} at (x={events['x'][i]}, y={events['y'][i]}) is outside the "
                f"geometry {self.geometry} given to the writer", self.path)
        t = events["t"]
        cur_high = max(int(self._state[K.W_HIGH]), 0)
        high_bits = 28 if self.encoding == "evt2" else 12
        low_bits = 6 if self.encoding == "evt2" else 12
        wraps = max(0, (int(t.max()) >> (high_bits + low_bits)) - (cur_high >> high_bits)) + 1
        out = np.empty(self.words_per_event * n + 2 * wraps + 4, dtype=self.word_dtype)
        k, err, at = self._encode(events["x"], events["y"], events["p"], t, out, self._state)
        if err:
            what = {K.ERR_NEGATIVE_TIME: "has a negative time",
                    K.ERR_TIME_BACKWARDS: "is earlier than the event before it (events must be time-ordered)",
                    K.ERR_COORD_TOO_LARGE: "has a coordinate above 2047"}[err]
            raise EventFormatError(f"event {self._written + at} (t={int(t[at])} µs) {what}; nothing was written for "
                                   "this block", self.path)
        out[:k].tofile(self._fh)
        self._written += n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Evt2Writer(_RawWriter):
    """EVT 2.0 writer: one CD word per event plus a TIME_HIGH word whenever t >> 6 changes."""

    format_name = "evt2"
    encoding = "evt2"
    word_dtype = np.dtype("<u4")
    words_per_event = 2

    def _encode(self, x, y, p, t, out, state):
        return K.encode_evt2(x, y, p, t, out, state)


class Evt3Writer(_RawWriter):
    """EVT 3.0 writer: time/row words on change, vector groups (VECT_BASE_X, VECT_12, VECT_12, VECT_8) for
    same-row runs, ADDR_X otherwise (see :func:`eventclip.io._evt_kernels.encode_evt3`)."""

    format_name = "evt3"
    encoding = "evt3"
    word_dtype = np.dtype("<u2")
    words_per_event = 5

    def _encode(self, x, y, p, t, out, state):
        return K.encode_evt3(x, y, p, t, out, state, self.geometry.width)


def _sniffer(encoding: str):
    def sniff(head: bytes, path: Path) -> bool:
        hdr = parse_header(head)
        if hdr.data_offset == 0:
            return False
        return hdr.inferred_encoding() == encoding

    return sniff


register_format(FormatSpec("evt3", "Prophesee RAW, EVT 3.0", (".raw",), _sniffer("evt3"), Evt3Reader, Evt3Writer,
                           aliases=("evt30", "raw"), sniff_order=10))
register_format(FormatSpec("evt2", "Prophesee RAW, EVT 2.0", (".raw",), _sniffer("evt2"), Evt2Reader, Evt2Writer,
                           aliases=("evt20",), sniff_order=11))
register_format(FormatSpec("evt21", "Prophesee RAW, EVT 2.1 (read only)", (".raw",), _sniffer("evt21"), Evt21Reader,
                           sniff_order=12))
