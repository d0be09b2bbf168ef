"""Prophesee RAW files: EVT 2.0 (read/write), EVT 2.1 (read) and EVT 3.0 (read/write).

A RAW file is an ASCII ``%`` header (see :mod:`eventclip.io._raw_header`) followed by event words:
32-bit for EVT 2.0, 64-bit for EVT 2.1, 16-bit for EVT 3.0, little-endian. Decoding is done in
blocks of ``BLOCK_BYTES`` by the numba kernels in :mod:`eventclip.io._evt_kernels`, with the
decoder state (time base, wrap count, row, vector base) carried from block to block, so memory
stays bounded whatever the file size.

Timestamps are exact and unbounded: EVT 2.x time is TIME_HIGH (28 bits) << 6 | 6-bit low (34
bits, ~4.8 h) and EVT 3.0 time is TIME_HIGH (12 bits) << 12 | TIME_LOW (12 bits) (24 bits,
~16.8 s); a TIME_HIGH that drops by more than half its range counts as a wrap and adds 2^34
(resp. 2^24) µs. CD events that arrive before the first TIME_HIGH have no time base: they are
counted in ``metadata['events_before_time_base']`` (and logged), not invented.
External trigger events are kept in ``reader.triggers`` (fields t µs, id, p).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry, as_events
from eventclip.io import _evt_kernels as K
from eventclip.io._mmap import map_words
from eventclip.io._raw_header import RawHeader, format_header, parse_header, read_header, resolve_geometry
from eventclip.io.base import EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError

log = logging.getLogger(__name__)

BLOCK_BYTES = 8 << 20
"""Bytes of event words decoded per block (8 MiB)."""

TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("id", "<i2"), ("p", "<i2")])
"""External trigger events: time (µs), trigger channel id, edge value (0 falling, 1 rising)."""

MAX_COORD = 2048
"""EVT 2.x/3.0 addresses are 11 bits: sensors up to 2048x2048."""

TRIGGER_BLOCK = 1 << 16
"""Trigger events buffered per decoder call; the kernel returns early when the buffer fills."""


class _RawReader(EventReader):
    """Shared block loop of the three RAW decoders; subclasses set the word type and the kernel."""

    encoding = ""
    word_dtype: np.dtype = np.dtype("<u4")
    events_per_word_estimate = 1
    max_events_per_word = 1

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
        """An upper bound on the CD events in ``words`` (exact unless some precede the first TIME_HIGH)."""
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
                tr = np.empty(nt, dtype=TRIGGER_DTYPE)
                tr["t"], tr["id"], tr["p"] = trig[:nt, 0], trig[:nt, 1], trig[:nt, 2]
                self._triggers.append(tr)
            if err:
                offset = self.header.data_offset + (first_word + pos + at) * ws
                raise self._error(err, offset, int(words[pos + at]))
            if used == 0 and n == 0 and nt == 0:
                raise RuntimeError(f"{self.path}: decoder made no progress at word {first_word + pos}")
            pos += used
            filled += n
            if n:
                yield block[:n]

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

    def __iter__(self) -> Iterator[np.ndarray]:
        start, n_words, tail = self._layout()
        block_words = BLOCK_BYTES // self.word_dtype.itemsize
        state = K.new_decoder_state()
        with self.path.open("rb") as fh:
            fh.seek(start)
            done = 0
            while done < n_words:
                raw = np.fromfile(fh, dtype=self.word_dtype, count=min(block_words, n_words - done))
                if len(raw) == 0:
                    break
                yield from self._decode_words(self._words(raw), done, state)
                done += len(raw)
        self._finish(state, tail)

    def read_all(self) -> np.ndarray:
        """Decode the whole file into one array: count the events first, then decode in place (no copies).

        The words are memory-mapped for this short whole-file read; streaming iteration reads
        copies instead, so a file truncated by another process mid-stream raises, not SIGBUS.
        """
        start, n_words, tail = self._layout()
        words = self._words(map_words(self.path, self.word_dtype, start, n_words))
        out = np.empty(int(self._count(words)) + self.max_events_per_word, dtype=EVENT_DTYPE)
        state = K.new_decoder_state()
        n = sum(len(b) for b in self._decode_words(words, 0, state, out))
        self._finish(state, tail)
        return out[:n]


class Evt2Reader(_RawReader):
    """EVT 2.0: one 32-bit word per CD event."""

    format_name = "evt2"
    encoding = "evt2"
    word_dtype = np.dtype("<u4")

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt2(words, out, trig, state, width, height)

    def _count(self, words: np.ndarray) -> int:
        return K.count_evt2(words)


class Evt21Reader(_RawReader):
    """EVT 2.1: 64-bit words, each a row segment of up to 32 same-polarity pixels.

    Byte order: ``% format EVT21;endianness=legacy`` files (IMX636 EVKs) store the 64-bit word as
    its high 32-bit half then its low half, each little-endian; other files store a little-endian
    64-bit word.
    """

    format_name = "evt21"
    encoding = "evt21"
    word_dtype = np.dtype("<u8")
    events_per_word_estimate = 2
    max_events_per_word = 32

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        self.legacy = self.header.format_fields.get("endianness", "").lower() == "legacy"
        self.metadata["endianness"] = "legacy" if self.legacy else "little"

    def _words(self, raw: np.ndarray) -> np.ndarray:
        if not self.legacy:
            return raw
        halves = raw.view("<u4").reshape(-1, 2)
        return (halves[:, 0].astype(np.uint64) << np.uint64(32)) | halves[:, 1].astype(np.uint64)

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt21(words, out, trig, state, width, height)

    def _count(self, words: np.ndarray) -> int:
        return K.count_evt21(words)


class Evt3Reader(_RawReader):
    """EVT 3.0: 16-bit words with row/time state and 8/12-pixel vectors."""

    format_name = "evt3"
    encoding = "evt3"
    word_dtype = np.dtype("<u2")
    events_per_word_estimate = 2
    max_events_per_word = 12

    def _decode(self, words, out, trig, state, width, height):
        return K.decode_evt3(words, out, trig, state, width, height)

    def _count(self, words: np.ndarray) -> int:
        return K.count_evt3(words)


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
    """EVT 3.0 writer: time/row words on change, VECT_12 for same-row runs, ADDR_X otherwise."""

    format_name = "evt3"
    encoding = "evt3"
    word_dtype = np.dtype("<u2")
    words_per_event = 5

    def _encode(self, x, y, p, t, out, state):
        return K.encode_evt3(x, y, p, t, out, state)


def _sniffer(encoding: str):
    def sniff(head: bytes, path: Path) -> bool:
        hdr = parse_header(head)
        if hdr.data_offset == 0:
            return False
        return hdr.inferred_encoding() == encoding

    return sniff


register_format(FormatSpec("evt3", "Prophesee RAW, EVT 3.0", (".raw",), _sniffer("evt3"), Evt3Reader, Evt3Writer,
                           aliases=("evt30", "raw")))
register_format(FormatSpec("evt2", "Prophesee RAW, EVT 2.0", (".raw",), _sniffer("evt2"), Evt2Reader, Evt2Writer,
                           aliases=("evt20",)))
register_format(FormatSpec("evt21", "Prophesee RAW, EVT 2.1 (read only)", (".raw",), _sniffer("evt21"), Evt21Reader))
