"""Plain containers: ``.npy``, ``.npz`` and ``.csv`` event files (read and write).

Conventions (also in docs/io_formats_inivation_datasets.md):

- **npy**: one structured array with fields ``x``, ``y``, ``t`` (µs) and ``p`` (or ``polarity``
  / ``on``); any integer widths. Geometry lives in a JSON sidecar ``<file>.npy.json``
  (``{"width": W, "height": H}``) because the npy header cannot carry extra keys. Read with a
  memory map in blocks, so files larger than RAM stream. Our writer writes EVENT_DTYPE and the
  sidecar.
- **npz**: columns ``x``, ``y``, ``p``, ``t`` (or one structured ``events`` array) plus scalar
  ``width`` and ``height`` arrays. The writer keeps events in memory until ``close`` (zip
  members need their size up front); use npy or aedat4 for very long recordings.
- **csv**: optional ``#`` comment lines, one of which carries ``geometry: WIDTHxHEIGHT``; then
  the header line ``x,y,p,t``; then one event per line, integers, t in µs.

Every reader checks polarity (0/1), geometry and non-decreasing time, and names the file and
byte offset (or line) of the first bad event.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry, as_events
from eventclip.io._mmap import file_blocks
from eventclip.io.base import EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
CSV_HEADER = "x,y,p,t"
_GEOMETRY_RE = re.compile(r"geometry\s*[:=]\s*(\d+)\s*x\s*(\d+)", re.IGNORECASE)
_POLARITY_FIELDS = ("p", "polarity", "on")
NPY_HEADER_ERRORS = (ValueError, SyntaxError, EOFError, TypeError, KeyError, tokenize.TokenError, MemoryError,
                     OverflowError)
"""What numpy's npy header parser raises on garbage (it tokenizes the header as Python literals)."""
NPZ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, NotImplementedError, struct.error,
              *NPY_HEADER_ERRORS)
"""What numpy/zipfile raise on a corrupt .npz (the fuzz tests found several); all become EventFormatError."""


def sidecar_path(path: PathLike) -> Path:
    """The JSON geometry sidecar of a ``.npy`` file: ``events.npy`` -> ``events.npy.json``."""
    return Path(os.fspath(path) + ".json")


def first_problem(x: np.ndarray, y: np.ndarray, t: np.ndarray, last_t: int, geometry: Geometry, path: Path,
                  offset_of, *, p: np.ndarray | None = None, negative: np.ndarray | None = None
                  ) -> tuple[int, EventFormatError] | None:
    """The first bad event in file order: (its index, an error naming its byte offset), or None.

    Checked per event, in this order: a negative raw timestamp (``negative``, where a format can
    have one), polarity other than 0/1 (``p``, where a format stores it as a number), a position
    outside ``geometry`` (x, y unclamped), a time earlier than the event before (``last_t`` for the
    first). ``offset_of(i)`` maps an index to its byte offset in the file. Readers hand over the
    events before the index, then raise: a cut or damaged file still gives up its valid events.
    """
    if len(t) == 0:
        return None
    outside = (x >= geometry.width) | (y >= geometry.height)
    back = np.empty(len(t), dtype=bool)
    back[0] = t[0] < last_t
    np.less(t[1:], t[:-1], out=back[1:])
    bad_p = None if p is None else (p != 0) & (p != 1)
    bad = outside | back
    for extra in (bad_p, negative):
        if extra is not None:
            bad |= extra
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    at = offset_of(i)
    if negative is not None and negative[i]:
        return i, EventFormatError("negative 31-bit timestamp", path, at)
    if bad_p is not None and bad_p[i]:
        return i, EventFormatError(f"event has polarity {int(p[i])} (must be 0 or 1)", path, at)
    if outside[i]:
        return i, GeometryError(f"event at (x={int(x[i])}, y={int(y[i])}) lies outside the sensor geometry {geometry}",
                                path, at)
    return i, EventFormatError(
        f"event goes back in time (t={int(t[i])} µs after {int(t[i - 1]) if i else last_t} µs); "
        "eventclip streams must be time-ordered: sort by t first", path, at)


def validate_block(events: np.ndarray, geometry: Geometry, last_t: int, path: Path, offset_of) -> None:
    """Raise the error of :func:`first_problem` for EVENT_DTYPE ``events``, if any."""
    problem = first_problem(events["x"], events["y"], events["t"], last_t, geometry, path, offset_of, p=events["p"])
    if problem is not None:
        raise problem[1]


def checked_blocks(block: np.ndarray, geometry: Geometry, last_t: int, path: Path, offset_of, *,
                   x: np.ndarray | None = None, y: np.ndarray | None = None, negative: np.ndarray | None = None
                   ) -> Iterator[np.ndarray]:
    """Yield ``block`` if it is valid; else yield its valid events before the first bad one, then raise.

    ``x``, ``y`` (the unclamped coordinates, where ``block`` holds clamped ones) and ``negative`` go to
    :func:`first_problem`.
    """
    problem = first_problem(block["x"] if x is None else x, block["y"] if y is None else y, block["t"], last_t,
                            geometry, path, offset_of, p=block["p"], negative=negative)
    if problem is None:
        if len(block):
            yield block
        return
    i, error = problem
    if i:
        yield block[:i]
    raise error


def to_events(columns: dict[str, np.ndarray], path: Path, offset_of) -> np.ndarray:
    """Build EVENT_DTYPE events from x, y, p (bool or integer), t columns, refusing values that do not fit."""
    n = len(columns["x"])
    for name in ("x", "y", "t", "p"):
        col = columns[name]
        if col.dtype.kind not in "iub":
            if col.dtype.kind == "f" and np.array_equal(col, np.floor(col)):
                continue
            raise EventFormatError(f"column {name!r} has dtype {col.dtype}; integers are required", path, offset_of(0))
    for name in ("x", "y"):
        col = columns[name]
        if n and (col.min() < 0 or col.max() > 0xFFFF):
            i = int(np.argmax((col < 0) | (col > 0xFFFF)))
            raise EventFormatError(f"{name}={col[i]} is not a pixel coordinate", path, offset_of(i))
    out = np.empty(n, dtype=EVENT_DTYPE)
    out["x"] = columns["x"]
    out["y"] = columns["y"]
    p = columns["p"]
    if n and p.dtype.kind != "b" and (p.min() < 0 or p.max() > 1):
        i = int(np.argmax((p < 0) | (p > 1)))
        raise EventFormatError(f"event has polarity {p[i]} (must be 0 or 1)", path, offset_of(i))
    out["p"] = p
    out["t"] = columns["t"]
    return out


def _polarity_field(names: tuple[str, ...]) -> str | None:
    return next((f for f in _POLARITY_FIELDS if f in names), None)


def _read_sidecar(path: Path) -> Geometry | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        return Geometry(int(meta["width"]), int(meta["height"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise GeometryError(f"geometry sidecar {side} is invalid ({exc}); it must be "
                            '{"width": W, "height": H}', path, None) from exc


def _missing_geometry(path: Path, where: str) -> GeometryError:
    return GeometryError(f"the file carries no sensor geometry; pass geometry=Geometry(width, height) "
                         f"(CLI: --geometry WIDTHxHEIGHT) or {where}", path, 0)


# ----------------------------------------------------------------------------------------- npy


def _sniff_npy(head: bytes, path: Path) -> bool:
    header = head[:4096]
    return header.startswith(NPY_MAGIC) and b"'x'" in header and b"'t'" in header


class NpyReader(EventReader):
    """Streams a structured ``.npy`` event array through a memory map, ``block_events`` at a time."""

    format_name = "npy"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_events: int = 1 << 20) -> None:
        super().__init__(path, geometry)
        self.block_events = block_events
        path = self.path
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                if NPY_MAGIC.startswith(head[:6]) and head:
                    raise TruncatedFileError("file ends inside the npy magic", path, len(head))
                raise EventFormatError("not an npy file (too short)", path, 0)
            if not head.startswith(NPY_MAGIC):
                raise EventFormatError("not an npy file: bad magic", path, 0)
            fh.seek(0)
            try:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                with warnings.catch_warnings():  # numpy parses a corrupt header as Python text, which can warn
                    warnings.simplefilter("ignore", SyntaxWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    shape, fortran, dtype = read_header(fh, max_header_size=1 << 20)
            except NPY_HEADER_ERRORS as exc:
                raise EventFormatError(f"the npy header is invalid ({exc})", path, 8) from exc
            self._data_offset = fh.tell()
        names = dtype.names or ()
        pol = _polarity_field(names)
        if len(shape) != 1 or not names or pol is None or not {"x", "y", "t"} <= set(names):
            raise EventFormatError(
                f"npy array has dtype {dtype} and shape {shape}; eventclip reads a 1-D structured array "
                "with fields x, y, t and p (or polarity/on)", path, 8,
            )
        if dtype.hasobject:
            raise EventFormatError("npy array holds Python objects; refusing to unpickle", path, 8)
        self._dtype, self._pol = dtype, pol
        self._count = shape[0]
        expected = self._data_offset + self._count * dtype.itemsize
        if size < expected:
            whole = (size - self._data_offset) // dtype.itemsize
            raise TruncatedFileError(
                f"npy header declares {self._count} events but the file holds {whole}",
                path, self._data_offset + whole * dtype.itemsize,
            )
        if size > expected:
            raise EventFormatError(f"{size - expected} unexpected bytes after the npy array", path, expected)
        if self.geometry is None:
            self.geometry = _read_sidecar(path)
        if self.geometry is None:
            raise _missing_geometry(path, f"write {sidecar_path(path).name} with width and height")

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._count == 0:
            return
        item, base = self._dtype.itemsize, self._data_offset
        last_t = np.iinfo(np.int64).min
        for start, part in file_blocks(self.path, self._dtype, base, self._count, self.block_events):
            offset_of = lambda i, s=start: base + (s + i) * item  # noqa: E731
            cols = {"x": part["x"], "y": part["y"], "p": part[self._pol], "t": part["t"]}
            block = to_events(cols, self.path, offset_of)
            yield from checked_blocks(block, self.geometry, last_t, self.path, offset_of)
            last_t = int(block["t"][-1])


def _npy_header(count: int) -> bytes:
    """A v1.0 npy header for ``count`` EVENT_DTYPE events, always 256 bytes so close() can rewrite it."""
    descr = np.lib.format.dtype_to_descr(EVENT_DTYPE)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({count:d},), }}"
    total = 256
    body = text.ljust(total - 10 - 1) + "\n"
    if len(body) + 10 != total:
        raise ValueError("npy header does not fit in 256 bytes")
    return NPY_MAGIC + b"\x01\x00" + (total - 10).to_bytes(2, "little") + body.encode("latin1")


class _CheckedWriter(EventWriter):
    """Shared checks of our writers: EVENT_DTYPE, polarity 0/1, geometry, non-decreasing time."""

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        self._last_t = np.iinfo(np.int64).min
        self._count = 0
        self._closed = False

    def _check(self, events: np.ndarray) -> np.ndarray:
        """Return ``events`` as EVENT_DTYPE (any x/y/p/t structured array is accepted) after checking them."""
        events = as_events(events)
        try:
            validate_block(events, self.geometry, self._last_t, self.path, lambda i: self._count + i)
        except EventFormatError as exc:
            raise ValueError(f"cannot write event {exc.offset}: {exc.message}") from None
        if len(events):
            self._last_t = int(events["t"][-1])
        self._count += len(events)
        return events


class NpyWriter(_CheckedWriter):
    """Streams EVENT_DTYPE events to ``.npy`` and writes the geometry sidecar; close() fixes the count."""

    format_name = "npy"

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        self._fh = open(self.path, "wb")
        self._fh.write(_npy_header(0))

    def write(self, events: np.ndarray) -> None:
        events = self._check(events)
        self._fh.write(np.ascontiguousarray(events).tobytes())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._fh.seek(0)
            self._fh.write(_npy_header(self._count))
        finally:
            self._fh.close()
        sidecar_path(self.path).write_text(json.dumps({"width": self.geometry.width, "height": self.geometry.height}))


# ----------------------------------------------------------------------------------------- npz


def _sniff_npz(head: bytes, path: Path) -> bool:
    if not head.startswith(ZIP_MAGIC):
        return False
    name_len = int.from_bytes(head[26:28], "little") if len(head) >= 30 else 0
    first = head[30 : 30 + name_len]
    return first in (b"x.npy", b"y.npy", b"p.npy", b"t.npy", b"events.npy", b"width.npy", b"height.npy")


class NpzReader(EventReader):
    """Reads a ``.npz`` of x/y/p/t columns (or a structured ``events`` array) with width/height scalars."""

    format_name = "npz"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_events: int = 1 << 20) -> None:
        super().__init__(path, geometry)
        self.block_events = block_events
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                keys = set(npz.files)
                if "events" in keys:
                    ev = npz["events"]
                    pol = _polarity_field(ev.dtype.names or ())
                    if ev.ndim != 1 or pol is None or not {"x", "y", "t"} <= set(ev.dtype.names or ()):
                        raise EventFormatError(f"'events' array has dtype {ev.dtype}; need fields x, y, t, p", path, 0)
                    cols = {"x": ev["x"], "y": ev["y"], "p": ev[pol], "t": ev["t"]}
                else:
                    pol = next((k for k in _POLARITY_FIELDS if k in keys), None)
                    missing = [k for k in ("x", "y", "t") if k not in keys] + (["p"] if pol is None else [])
                    if missing:
                        raise EventFormatError(
                            f"npz has arrays {sorted(keys)}; missing {missing} (need x, y, p, t columns or 'events')",
                            path, 0,
                        )
                    cols = {"x": npz["x"], "y": npz["y"], "p": npz[pol], "t": npz["t"]}
                sizes = {k: v.shape for k, v in cols.items()}
                if any(len(s) != 1 for s in sizes.values()) or len({s[0] for s in sizes.values()}) != 1:
                    raise EventFormatError(f"npz columns must be 1-D and equally long, got shapes {sizes}", path, 0)
                if self.geometry is None and {"width", "height"} <= keys:
                    self.geometry = Geometry(int(npz["width"]), int(npz["height"]))
        except EventFormatError:
            raise
        except NPZ_ERRORS as exc:
            raise EventFormatError(f"not a readable npz archive ({type(exc).__name__}: {exc})", path, 0) from exc
        if self.geometry is None:
            raise _missing_geometry(path, "store scalar 'width' and 'height' arrays in the npz")
        self._cols = cols

    def __iter__(self) -> Iterator[np.ndarray]:
        n = len(self._cols["x"])
        last_t = np.iinfo(np.int64).min
        for start in range(0, n, self.block_events):
            part = {k: v[start : start + self.block_events] for k, v in self._cols.items()}
            # npz members are (possibly compressed) zip entries: the offset is the event index.
            offset_of = lambda i, s=start: s + i  # noqa: E731
            block = to_events(part, self.path, offset_of)
            yield from checked_blocks(block, self.geometry, last_t, self.path, offset_of)
            last_t = int(block["t"][-1])


class NpzWriter(_CheckedWriter):
    """Writes x, y, p, t columns and width/height scalars with ``np.savez_compressed`` on close."""

    format_name = "npz"

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        self._blocks: list[np.ndarray] = []

    def write(self, events: np.ndarray) -> None:
        events = self._check(events)
        self._blocks.append(events.copy())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ev = np.concatenate(self._blocks, dtype=EVENT_DTYPE) if self._blocks else np.empty(0, EVENT_DTYPE)
        with open(self.path, "wb") as fh:
            np.savez_compressed(fh, x=ev["x"], y=ev["y"], p=ev["p"], t=ev["t"],
                                width=np.int64(self.geometry.width), height=np.int64(self.geometry.height))


# ----------------------------------------------------------------------------------------- csv


def _sniff_csv(head: bytes, path: Path) -> bool:
    try:
        text = head[:4096].decode("ascii")
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.replace(" ", "") == CSV_HEADER
    return False


class CsvReader(EventReader):
    """Streams ``x,y,p,t`` CSV lines in blocks of about ``block_bytes``; errors name line and byte offset."""

    format_name = "csv"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_bytes: int = 1 << 22) -> None:
        super().__init__(path, geometry)
        self.block_bytes = block_bytes
        declared = None
        offset = 0
        line_no = 0
        with open(self.path, "rb") as fh:
            while True:
                raw = fh.readline(1 << 16)
                line_no += 1
                if not raw:
                    raise EventFormatError(f"no '{CSV_HEADER}' header line before the end of the file",
                                           self.path, offset)
                text = raw.decode("utf-8", errors="replace").strip()
                if text.startswith("#"):
                    m = _GEOMETRY_RE.search(text)
                    if m:
                        try:
                            declared = Geometry(int(m.group(1)), int(m.group(2)))
                        except ValueError as exc:
                            raise GeometryError(f"line {line_no}: {exc}", self.path, offset) from exc
                    offset += len(raw)
                    continue
                if not text:
                    offset += len(raw)
                    continue
                if text.replace(" ", "") != CSV_HEADER:
                    raise EventFormatError(
                        f"line {line_no}: expected the header '{CSV_HEADER}', found {text[:60]!r}", self.path, offset
                    )
                offset += len(raw)
                break
        self._data_offset, self._first_line = offset, line_no + 1
        if self.geometry is None:
            self.geometry = declared
        if self.geometry is None:
            raise _missing_geometry(self.path, "add a comment line '# geometry: WIDTHxHEIGHT' before the header")
        self.metadata = {"declared_geometry": declared}

    def _parse(self, data: bytes, base: int, line0: int) -> np.ndarray:
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        n = len(lines)
        try:
            # numpy's C parser; it skips blank lines, so a row count other than n falls through to the
            # line-by-line pass below, which names the offending line.
            values = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.int64, ndmin=2, comments=None,
                                encoding=None)
            if values.shape == (n, 4):
                return values
        except (ValueError, OverflowError):
            pass
        pos = base
        for k, line in enumerate(lines):
            fields = line.strip().split(b",")
            try:
                if len(fields) != 4:
                    raise ValueError(f"{len(fields)} fields")
                [int(f) for f in fields]
            except ValueError as exc:
                raise EventFormatError(
                    f"line {line0 + k}: {line[:60]!r} is not four integers x,y,p,t ({exc})", self.path, pos
                ) from None
            pos += len(line) + 1
        raise EventFormatError("a value does not fit in 64 bits", self.path, base)

    def __iter__(self) -> Iterator[np.ndarray]:
        last_t = np.iinfo(np.int64).min
        line = self._first_line
        with open(self.path, "rb") as fh:
            fh.seek(self._data_offset)
            base = self._data_offset
            carry = b""
            while True:
                chunk = fh.read(self.block_bytes)
                data = carry + chunk
                if not chunk:
                    if not data.strip():
                        return
                    data += b"\n"
                cut = data.rfind(b"\n") + 1
                body, carry = data[:cut], data[cut:]
                if body.strip():
                    starts = np.concatenate(([0], np.flatnonzero(np.frombuffer(body, np.uint8) == 10)[:-1] + 1))
                    try:
                        values = self._parse(body.replace(b"\r", b""), base, line)
                    except EventFormatError:
                        if chunk:
                            raise
                        raise TruncatedFileError(  # only the unterminated last line is left here
                            f"the file ends inside line {line} ({body.strip()[:60]!r}, no newline, not four "
                            "integers x,y,p,t): the recording was cut short; all complete lines before it were "
                            "read", self.path, base) from None
                    offset_of = lambda i, b=base, s=starts: b + int(s[i])  # noqa: E731
                    cols = {"x": values[:, 0], "y": values[:, 1], "p": values[:, 2], "t": values[:, 3]}
                    block = to_events(cols, self.path, offset_of)
                    yield from checked_blocks(block, self.geometry, last_t, self.path, offset_of)
                    if len(block):
                        last_t = int(block["t"][-1])
                line += body.count(b"\n")
                base += len(body)
                if not chunk:
                    return


class CsvWriter(_CheckedWriter):
    """Writes a geometry comment, the ``x,y,p,t`` header and one event per line."""

    format_name = "csv"

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        super().__init__(path, geometry)
        self._fh = open(self.path, "w", newline="\n")
        self._fh.write(f"# eventclip events; geometry: {geometry.width}x{geometry.height}; t in microseconds\n")
        self._fh.write(CSV_HEADER + "\n")

    def write(self, events: np.ndarray) -> None:
        events = self._check(events)
        if len(events):
            cols = np.stack([events["x"].astype(np.int64), events["y"].astype(np.int64),
                             events["p"].astype(np.int64), events["t"]], axis=1)
            for start in range(0, len(cols), 65536):
                part = cols[start : start + 65536]
                self._fh.write(("%d,%d,%d,%d\n" * len(part)) % tuple(part.ravel().tolist()))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._fh.close()


register_format(FormatSpec(
    name="npy", description="NumPy .npy structured array (x, y, p, t) with a .npy.json geometry sidecar",
    extensions=(".npy",), sniff=_sniff_npy, reader=NpyReader, writer=NpyWriter, sniff_order=80,
))
register_format(FormatSpec(
    name="npz", description="NumPy .npz with x, y, p, t columns and width/height scalars",
    extensions=(".npz",), sniff=_sniff_npz, reader=NpzReader, writer=NpzWriter, sniff_order=81,
))
register_format(FormatSpec(
    name="csv", description="CSV 'x,y,p,t' with a '# geometry: WxH' comment line",
    extensions=(".csv",), sniff=_sniff_csv, reader=CsvReader, writer=CsvWriter, sniff_order=82,
))
