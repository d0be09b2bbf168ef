"""Event Stream 2.x (``.es``, neuromorphic-paris), DVS type: a streaming reader.

Layout (spec: github.com/neuromorphic-paris/event_stream, "Version 2.0"): the 12 ASCII bytes
``Event Stream``, major/minor/patch version bytes, a stream-type byte (1 = DVS), width and height
as little-endian uint16, then a byte stream read by a state machine. In the idle state a byte is
either *overflow* ``0xFF`` (add 127 µs to the time), *reset* ``0xFE`` (resynchronisation
padding, no data) or the first byte of a 5-byte event: ``t_delta[6:0] << 1 | is_increase``,
x (uint16 LE), y (uint16 LE). Timestamps are deltas from the previous event, in µs, so the
decoder carries the absolute time and its state across blocks.

Event Stream puts y = 0 at the *bottom* row (the convention of the neuromorphic-paris tools);
eventclip, like Metavision and OpenCV, puts y = 0 at the top, so rows are flipped on read
(``y = height - 1 - y_file``), exactly as faery (same authors' ecosystem) does.

The state machine is sequential, so it runs in a numba kernel; :func:`decode_dvs_reference` is
the plain-Python statement of the same function, and the tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.io.base import EventReader, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError, UnsupportedFeatureError

MAGIC = b"Event Stream"
HEADER_SIZE = 20
"""Magic (12) + version (3) + type (1) + width, height (2 + 2) for the DVS type."""
STREAM_TYPES = {0: "generic", 1: "dvs", 2: "atis", 3: "asynchronous & modular display", 4: "color"}
OVERFLOW_US = 127

# Kernel status codes: OK, or the kind of the first bad event (its byte offset is returned too).
_OK, _OUTSIDE = 0, 1


def _sniff(head: bytes, path: Path) -> bool:
    return head.startswith(MAGIC) and len(head) > 15 and head[12] == 2 and head[15] == 1


def decode_dvs_reference(data: bytes, t0: int, width: int, height: int):
    """Plain-Python decoder of DVS Event Stream bytes; the specification of :func:`_decode_dvs`.

    Returns ``(x, y, p, t, consumed, t_last, status, bad_at)``: decoded columns, bytes consumed
    (an incomplete trailing event is left for the next block), the running time in µs, and a
    status (``_OUTSIDE`` with the event's byte index when an event lies outside the geometry).
    """
    xs, ys, ps, ts = [], [], [], []
    t = t0
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0xFF:
            t += OVERFLOW_US
            i += 1
            continue
        if b == 0xFE:
            i += 1
            continue
        if i + 5 > n:
            break
        t += b >> 1
        x = data[i + 1] | (data[i + 2] << 8)
        y = data[i + 3] | (data[i + 4] << 8)
        if x >= width or y >= height:
            return (np.array(xs, np.uint16), np.array(ys, np.uint16), np.array(ps, np.int16),
                    np.array(ts, np.int64), i, t, _OUTSIDE, i)
        xs.append(x)
        ys.append(height - 1 - y)
        ps.append(b & 1)
        ts.append(t)
        i += 5
    return (np.array(xs, np.uint16), np.array(ys, np.uint16), np.array(ps, np.int16),
            np.array(ts, np.int64), i, t, _OK, -1)


def _decode_dvs_py(data: np.ndarray, t0: int, width: int, height: int, out: np.ndarray):
    """Kernel body (compiled by numba): fills ``out`` (n, 4) int64 rows x, y, p, t."""
    t = t0
    i = 0
    k = 0
    n = data.shape[0]
    while i < n:
        b = data[i]
        if b == 0xFF:
            t += OVERFLOW_US
            i += 1
            continue
        if b == 0xFE:
            i += 1
            continue
        if i + 5 > n:
            break
        t += b >> 1
        x = np.int64(data[i + 1]) | (np.int64(data[i + 2]) << 8)
        y = np.int64(data[i + 3]) | (np.int64(data[i + 4]) << 8)
        if x >= width or y >= height:
            return k, i, t, _OUTSIDE, i
        out[k, 0] = x
        out[k, 1] = height - 1 - y
        out[k, 2] = b & 1
        out[k, 3] = t
        k += 1
        i += 5
    return k, i, t, _OK, -1


_kernel = None


def _decode_dvs(data: bytes, t0: int, width: int, height: int):
    """Numba-compiled twin of :func:`decode_dvs_reference` (same return tuple)."""
    global _kernel
    if _kernel is None:
        import numba

        _kernel = numba.njit(nogil=True, cache=True)(_decode_dvs_py)
    arr = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((len(arr) // 5 + 1, 4), dtype=np.int64)
    k, consumed, t, status, bad_at = _kernel(arr, np.int64(t0), np.int64(width), np.int64(height), out)
    out = out[:k]
    return (out[:, 0].astype(np.uint16), out[:, 1].astype(np.uint16), out[:, 2].astype(np.int16),
            out[:, 3].copy(), consumed, t, status, bad_at)


class EsReader(EventReader):
    """Streams a DVS-type Event Stream 2.x file in blocks of ``block_bytes`` of input.

    Geometry comes from the header (a caller-given geometry must match or contain it). Other
    stream types (ATIS, color, generic) raise UnsupportedFeatureError naming the type.
    """

    format_name = "es"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_bytes: int = 1 << 22) -> None:
        super().__init__(path, geometry)
        self.block_bytes = block_bytes
        self._fh = open(self.path, "rb")
        try:
            self._read_header()
        except BaseException:
            self._fh.close()
            raise

    def _read_header(self) -> None:
        head = self._fh.read(HEADER_SIZE)
        path = self.path
        if len(head) < 16 and head and MAGIC.startswith(head[:12]):
            raise TruncatedFileError("file ends inside the Event Stream header", path, len(head))
        if not head.startswith(MAGIC):
            raise EventFormatError("not an Event Stream file: it does not start with 'Event Stream'", path, 0)
        major, minor, patch, kind = head[12], head[13], head[14], head[15]
        if major != 2:
            raise UnsupportedFeatureError(
                f"Event Stream version {major}.{minor}.{patch} is not supported (only 2.x)", path, 12
            )
        if kind != 1:
            name = STREAM_TYPES.get(kind, f"unknown type {kind}")
            raise UnsupportedFeatureError(
                f"Event Stream type '{name}' is not supported; eventclip reads the DVS type (1)", path, 15
            )
        if len(head) < HEADER_SIZE:
            raise TruncatedFileError("file ends inside the DVS width/height header", path, len(head))
        width = int.from_bytes(head[16:18], "little")
        height = int.from_bytes(head[18:20], "little")
        if width == 0 or height == 0:
            raise GeometryError(f"header declares a {width}x{height} sensor", path, 16)
        declared = Geometry(width, height)
        if self.geometry is None:
            self.geometry = declared
        self.metadata = {"version": f"{major}.{minor}.{patch}", "declared_geometry": declared}

    def __iter__(self) -> Iterator[np.ndarray]:
        fh, path = self._fh, self.path
        fh.seek(HEADER_SIZE)
        offset = HEADER_SIZE
        t = 0
        carry = b""
        width, height = self.geometry.width, self.geometry.height
        while True:
            chunk = fh.read(self.block_bytes)
            if not chunk:
                break
            data = carry + chunk
            base = offset - len(carry)
            x, y, p, ts, consumed, t, status, bad_at = _decode_dvs(data, t, width, height)
            if len(x):  # at a bad event, these are the valid ones before it: handed over first
                block = np.empty(len(x), dtype=EVENT_DTYPE)
                block["x"], block["y"], block["p"], block["t"] = x, y, p, ts
                yield block
            if status == _OUTSIDE:
                bx = data[bad_at + 1] | (data[bad_at + 2] << 8)
                by = data[bad_at + 3] | (data[bad_at + 4] << 8)
                raise GeometryError(
                    f"event at (x={bx}, y={by}) lies outside the sensor geometry {self.geometry}", path, base + bad_at
                )
            carry = data[consumed:]
            offset += len(chunk)
        if carry:
            raise TruncatedFileError(
                f"file ends inside an event ({len(carry)} of 5 bytes)", path, offset - len(carry)
            )

    def close(self) -> None:
        self._fh.close()


register_format(
    FormatSpec(
        name="es",
        description="Event Stream 2.x (neuromorphic-paris .es), DVS type",
        extensions=(".es",),
        sniff=_sniff,
        reader=EsReader,
        sniff_order=70,
    )
)
