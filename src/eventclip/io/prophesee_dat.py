"""Prophesee DAT files (read and write): ``%`` header, a type byte and a size byte, then 8-byte CD records.

Layout (version 2, as written by Prophesee/Chronocam tools and read by loris and tonic): each
record is ``t`` uint32 µs then ``data`` uint32 = x (14 bits) | y (14 bits) << 14 | p << 28. The
event-type byte is 0x0C (CD, Metavision) or 0x00 (``Event2d``, older Chronocam/ATIS files such as
N-CARS); the size byte is 8. Time wraps every 2^32 µs (71.6 min): a drop of more than 2^31 µs is
unwrapped, so timestamps stay exact across wraps. Geometry comes from ``% Width``/``% Height``
header lines; files without them (N-CARS) get max(x)+1 x max(y)+1 from a scan of the file's records up
to the first bad one, recorded as ``metadata['geometry_source'] == 'scan'``, unless the caller gives one.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry, as_events
from eventclip.io import _dat_kernels as K
from eventclip.io._mmap import file_blocks, map_words
from eventclip.io.base import EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, UnsupportedFeatureError

log = logging.getLogger(__name__)

CD_TYPES = (0x00, 0x0C)
RECORD_SIZE = 8
BLOCK_RECORDS = 1 << 18
"""Records decoded per block (2 MiB of file, 4 MiB of events)."""
MAX_HEADER_BYTES = 1 << 20
MAX_COORD = 1 << 14
SUSPECT_RECORDS = 16
"""Records just before the first bad one that a geometry scan leaves out. Why: random bytes pass the
decoder's checks about one record in 13 (polarity 0 or 1: one in 8; time in order or a wrap: 5 in 8), so
garbage may start a few records before the first record refused, with coordinates up to 16383; 16 in a
row pass about once in 10^17. A real recording reaches its sensor's edges in many records, not only in
its last 16 before a fault. A fault within the first 32 records keeps every record before it."""


def parse_dat_header(head: bytes) -> tuple[int, dict[str, str], list[str]]:
    """(offset of the type byte, ``% Key value`` fields, raw lines) for the ``% `` lines at the start."""
    pos = 0
    fields: dict[str, str] = {}
    lines: list[str] = []
    while head[pos : pos + 2] == b"% " or head[pos : pos + 2] == b"%\n":
        nl = head.find(b"\n", pos)
        if nl < 0:
            break
        line = head[pos + 2 : nl].decode("latin-1").strip()
        lines.append(line)
        key, _, value = line.partition(" ")
        if key:
            fields.setdefault(key, value.strip())
        pos = nl + 1
    return pos, fields, lines


class DatReader(EventReader):
    """Streams CD records from a DAT file in blocks, unwrapping 32-bit time."""

    format_name = "dat"

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        try:
            with self.path.open("rb") as fh:
                head = fh.read(MAX_HEADER_BYTES)
            self._size = self.path.stat().st_size
        except OSError as exc:
            raise EventFormatError(f"cannot open DAT file: {exc.strerror or exc}", self.path) from exc
        hdr_end, fields, lines = parse_dat_header(head)
        if hdr_end == 0:
            raise EventFormatError("no '% ' header: not a Prophesee DAT file", self.path, 0)
        if hdr_end >= MAX_HEADER_BYTES:
            raise EventFormatError("the '%' header does not end within 1 MiB", self.path, hdr_end)
        if self._size < hdr_end + 2:
            raise TruncatedFileError("the file ends before the event type and size bytes", self.path, self._size)
        ev_type, ev_size = head[hdr_end], head[hdr_end + 1]
        if ev_type not in CD_TYPES or ev_size != RECORD_SIZE:
            raise UnsupportedFeatureError(
                f"event type {ev_type:#04x} with {ev_size}-byte records; only CD events (type 0x00 or 0x0c, "
                "8 bytes) are supported", self.path, hdr_end)
        self.data_offset = hdr_end + 2
        self.metadata = {"header": fields, "event_type": ev_type, "data_offset": self.data_offset}
        if geometry is not None:
            self.metadata["geometry_source"] = "caller"
        elif "Width" in fields and "Height" in fields:
            try:
                self.geometry = Geometry(int(fields["Width"]), int(fields["Height"]))
            except ValueError as exc:
                raise GeometryError(f"bad % Width/% Height header lines: {exc}", self.path, 0) from exc
            self.metadata["geometry_source"] = "header"
        else:
            self.geometry = self._scan_geometry()
            self.metadata["geometry_source"] = "scan"

    def _records(self) -> Iterator[tuple[int, np.ndarray]]:
        """Blocks of ``BLOCK_RECORDS`` records, through a read-only map unless ``EVENTCLIP_MMAP=0``
        (see :mod:`eventclip.io._mmap`: copies cost a DAT stream ~12 %).

        Why small blocks: 256 k records (2 MiB in, 4 MiB out) keep each decoded block under glibc's
        mmap threshold, so the memory of blocks the consumer has dropped is reused.
        """
        n = (self._size - self.data_offset) // RECORD_SIZE
        yield from file_blocks(self.path, np.dtype("<u4"), self.data_offset, n, BLOCK_RECORDS, width=2)

    def _scan_geometry(self) -> Geometry:
        """max(x)+1 x max(y)+1 over the records before the first bad one (see :func:`_dat_kernels.scan_dat`),
        leaving out the ``SUSPECT_RECORDS`` just before it.

        A bad record is only noted here (``metadata['corrupt_at']``, and a warning naming its offset):
        streams still hand over every event before it and then raise, as for any corrupt file.
        """
        mx = my = -1
        state = np.array([0, -1], dtype=np.int64)
        bad = None
        for first, words in self._records():
            bx, by, n, err = K.scan_dat(words, state)
            mx, my = max(mx, int(bx)), max(my, int(by))
            if err:
                bad, why = first + int(n), "time goes backwards" if err == K.ERR_TIME_BACKWARDS else "bad polarity"
                break
        if bad is not None:
            mx, my, bad = self._size_before(bad)
            at = self.data_offset + bad * RECORD_SIZE
            self.metadata["corrupt_at"] = at
            log.warning("%s: the records from byte %d on are corrupt (%s); the sensor size %dx%d comes from the "
                        "records before them, and reading stops there with an error", self.path, at, why, mx + 1,
                        my + 1)
        if mx < 0:
            raise GeometryError("the DAT header has no % Width/% Height and the file has no valid event to size the "
                                "sensor from; pass geometry=", self.path, self.data_offset)
        return Geometry(mx + 1, my + 1)

    def _size_before(self, bad: int) -> tuple[int, int, int]:
        """(max x, max y) over the records before ``bad - SUSPECT_RECORDS`` (before ``bad`` when fewer than twice
        that many precede it), and the first record from which a stream of that geometry will refuse the data
        (at most ``bad``)."""
        cut = bad - SUSPECT_RECORDS if bad >= 2 * SUSPECT_RECORDS else bad
        mx = my = -1
        state = np.array([0, -1], dtype=np.int64)
        for first, words in self._records():
            if first >= cut:
                break
            bx, by, _, _ = K.scan_dat(words[:cut - first], state)
            mx, my = max(mx, int(bx)), max(my, int(by))
        suspects = np.fromfile(self.path, dtype="<u4", count=2 * (bad - cut),
                               offset=self.data_offset + cut * RECORD_SIZE).reshape(-1, 2)[:, 1].astype(np.int64)
        outside = np.flatnonzero(((suspects & 0x3FFF) > mx) | (((suspects >> 14) & 0x3FFF) > my))
        return mx, my, cut + int(outside[0]) if outside.size else bad

    def _decode(self, words: np.ndarray, first: int, state: np.ndarray) -> tuple[np.ndarray, EventFormatError | None]:
        """Decode records ``first``... : (the events before the first bad record, its error or None)."""
        out = np.empty(len(words), dtype=EVENT_DTYPE)
        n, err, at = K.decode_dat(words, out.view(np.int64).reshape(-1, 2), state, self.geometry.width,
                                  self.geometry.height)
        if not err:
            return out, None
        offset = self.data_offset + (first + at) * RECORD_SIZE
        if err == K.ERR_OUTSIDE_GEOMETRY:
            error = GeometryError(f"an event lies outside the sensor geometry {self.geometry}; pass the right "
                                  "geometry, or the data is corrupt", self.path, offset)
        elif err == K.ERR_TIME_BACKWARDS:
            error = EventFormatError("event time goes backwards (corrupt DAT data)", self.path, offset)
        else:
            error = EventFormatError("polarity field is not 0 or 1 (corrupt DAT data)", self.path, offset)
        return out[:n], error

    def __iter__(self) -> Iterator[np.ndarray]:
        """Blocks of ``BLOCK_RECORDS`` events; at a bad record the valid events before it are yielded,
        then the error is raised."""
        state = np.array([0, -1], dtype=np.int64)
        for done, words in self._records():
            events, error = self._decode(words, done, state)
            if len(events):
                yield events
            if error is not None:
                raise error
        self._check_tail()

    def read_all(self) -> np.ndarray:
        """Decode the whole file into one array in a single pass from a read-only memory map."""
        n = (self._size - self.data_offset) // RECORD_SIZE
        words = map_words(self.path, "<u4", self.data_offset, 2 * n, (n, 2))
        out, error = self._decode(words, 0, np.array([0, -1], dtype=np.int64))
        if error is not None:
            raise error
        self._check_tail()
        return out

    def _check_tail(self) -> None:
        tail = (self._size - self.data_offset) % RECORD_SIZE
        if tail:
            raise TruncatedFileError(f"the file ends {tail} byte(s) into an 8-byte record; the recording was cut "
                                     "short (all complete records before it were decoded)", self.path,
                                     self._size - tail)


class DatWriter(EventWriter):
    """Writes a Metavision-style header (``% Width``/``% Height``), type 0x0C, size 8, then records.

    DAT stores 32-bit time, so the first event must be before 2^32 µs and consecutive events less
    than 2^31 µs apart; the reader unwraps larger times from that. Anything else is refused.
    """

    format_name = "dat"

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        if geometry.width > MAX_COORD or geometry.height > MAX_COORD:
            raise GeometryError(f"geometry {geometry} exceeds the 16384x16384 that DAT can address", path)
        self._last_t = -1
        self._written = 0
        self._fh = self.path.open("wb")
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        header = (f"% Data file containing CD events.\n% Version 2\n% Date {date}\n"
                  f"% Height {geometry.height}\n% Width {geometry.width}\n")
        self._fh.write(header.encode("ascii") + bytes([0x0C, RECORD_SIZE]))

    def write(self, events: np.ndarray) -> None:
        if self._fh is None:
            raise ValueError(f"{self.path}: writer is closed")
        events = as_events(events)
        if len(events) == 0:
            return
        bad = (events["x"] >= self.geometry.width) | (events["y"] >= self.geometry.height)
        if bad.any():
            i = int(np.argmax(bad))
            raise GeometryError(f"event {self._written + i} at (x={events['x'][i]}, y={events['y'][i]}) is outside "
                                f"the geometry {self.geometry} given to the writer", self.path)
        t = events["t"]
        prev = np.concatenate([[self._last_t], t[:-1]]) if self._last_t >= 0 else np.concatenate([[t[0]], t[:-1]])
        if self._last_t < 0 and not 0 <= t[0] < K.WRAP:
            raise EventFormatError(f"the first event's time {int(t[0])} µs is outside DAT's 32-bit range "
                                   "[0, 2^32); shift the times first", self.path)
        gap = t - prev
        problem = (gap < 0) | (gap >= K.HALF)
        if problem.any():
            i = int(np.argmax(problem))
            why = "is earlier than the event before it" if gap[i] < 0 else "follows the previous one by 2^31 µs or more"
            raise EventFormatError(f"event {self._written + i} (t={int(t[i])} µs) {why}; DAT's 32-bit time cannot "
                                   "represent it", self.path)
        rec = np.empty((len(events), 2), dtype="<u4")
        rec[:, 0] = (t & 0xFFFFFFFF).astype(np.uint32)
        rec[:, 1] = (events["x"].astype(np.uint32) | (events["y"].astype(np.uint32) << 14)
                     | ((events["p"] != 0).astype(np.uint32) << 28))
        rec.tofile(self._fh)
        self._last_t = int(t[-1])
        self._written += len(events)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _sniff(head: bytes, path: Path) -> bool:
    end, fields, lines = parse_dat_header(head)
    return end > 0 and bool(lines) and "data file containing" in lines[0].lower()


register_format(FormatSpec("dat", "Prophesee DAT (CD events)", (".dat",), _sniff, DatReader, DatWriter,
                           sniff_order=20))
