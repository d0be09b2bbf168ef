"""iniVation AEDAT 4.0: our own streaming decoder and an LZ4 writer (no dv-processing needed).

Why our own: dv-processing is a large native dependency that many users cannot install (it is the
optional ``[inivation]`` extra). The format is simple enough to decode with ``struct`` and numpy:

- magic ``#!AER-DAT4.0\\r\\n``; then a uint32 size and a size-less ``IOHeader`` flatbuffer with
  ``compression`` (int32 enum: NONE, LZ4, LZ4_HIGH, ZSTD, ZSTD_HIGH), ``dataTablePosition`` (int64
  byte offset of the trailing index, -1 when absent) and ``infoNode`` (an XML string listing the
  streams: ``typeIdentifier`` EVTS/FRME/IMUS/TRIG, with ``sizeX``/``sizeY`` for cameras);
- packets: int32 stream id, int32 byte size, then that many (compressed) bytes holding a
  size-prefixed flatbuffer with a 4-byte file identifier (``EVTS`` for events);
- an ``EventPacket`` table has one field, a vector of 16-byte ``Event`` structs
  (int64 t in µs, int16 x, int16 y, bool on, 3 bytes padding).

Only events streams are decoded; frames, IMU and trigger packets are skipped unread. Each packet is
converted and checked (polarity, geometry, time order) in one pass of a numba kernel over 64-bit
words of the decompressed buffer, straight into the output block; :func:`convert_words_reference`
is the numpy statement of the same function and the tests compare the two.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from eventclip._optional import MissingDependencyError, require
from eventclip.events import EVENT_DTYPE, Geometry, as_events
from eventclip.io.base import EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.errors import (
    EventFormatError,
    GeometryError,
    TruncatedFileError,
    UnsupportedFeatureError,
    file_shrank,
)

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION_NAMES = {0: "NONE", 1: "LZ4", 2: "LZ4_HIGH", 3: "ZSTD", 4: "ZSTD_HIGH"}
DV_EVENT_DTYPE = np.dtype(
    {"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"], "offsets": [0, 8, 10, 12], "itemsize": 16}
)
"""dv::Event as stored in an EventPacket: t (µs), x, y (pixels), on (bool), 3 bytes padding."""

_MAX_HEADER = 64 * 1024 * 1024
_MAX_PACKET = 1 << 30
_LOW40 = np.uint64((1 << 40) - 1)

PREFETCH_MIN_BYTES = 32 * 1024
"""Packets at least this large (bytes as stored) are decompressed ahead in the reader's worker thread;
smaller ones in the calling thread (a hand-over costs about as much as decompressing 32 KiB of LZ4)."""


def _sniff(head: bytes, path: Path) -> bool:
    return head.startswith(MAGIC)


class _Flatbuffer:
    """Bounds-checked access to one flatbuffer table; every bad offset becomes EventFormatError.

    ``base`` is the file offset of ``buf[0]`` so errors point at the byte in the file (for
    compressed packets, at the packet's start).
    """

    def __init__(self, buf: bytes, path: Path, base: int, compressed: bool) -> None:
        self.buf = buf
        self.path = path
        self.base = base
        self.compressed = compressed

    def error(self, message: str, pos: int) -> EventFormatError:
        where = self.base if self.compressed else self.base + pos
        detail = f" (byte {pos} of the decompressed packet)" if self.compressed else ""
        return EventFormatError(message + detail, self.path, where)

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.buf):
            raise self.error("flatbuffer offset points outside the buffer", pos)
        return struct.unpack_from("<I", self.buf, pos)[0]

    def table_fields(self, table: int) -> tuple[int, ...]:
        """Absolute positions of a table's fields (0 where the field is absent)."""
        if table < 0 or table + 4 > len(self.buf):
            raise self.error("flatbuffer table outside the buffer", table)
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        if vtable < 0 or vtable + 4 > len(self.buf):
            raise self.error("flatbuffer vtable outside the buffer", table)
        vsize, tsize = struct.unpack_from("<HH", self.buf, vtable)
        if vsize < 4 or vsize % 2 or vtable + vsize > len(self.buf) or table + tsize > len(self.buf):
            raise self.error("flatbuffer vtable is malformed", vtable)
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", self.buf, vtable + 4)
        for off in offsets:
            if off and off >= tsize:
                raise self.error("flatbuffer field lies beyond its table", vtable)
        return tuple(table + off if off else 0 for off in offsets)

    def field(self, fields: tuple[int, ...], index: int) -> int:
        return fields[index] if index < len(fields) else 0

    def scalar(self, fields: tuple[int, ...], index: int, fmt: str, default: int) -> int:
        pos = self.field(fields, index)
        if not pos:
            return default
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def vector(self, fields: tuple[int, ...], index: int, elem_size: int) -> tuple[int, int]:
        """(start, count) of a vector field; (0, 0) when absent."""
        pos = self.field(fields, index)
        if not pos:
            return 0, 0
        vec = pos + self.u32(pos)
        count = self.u32(vec)
        start = vec + 4
        if start + count * elem_size > len(self.buf):
            raise self.error(f"flatbuffer vector of {count} elements runs past the buffer end", vec)
        return start, count


def _decompressor(compression: int, path: Path):
    """Return a bytes -> bytes function for the file's compression, or raise a clear error."""
    if compression == 0:
        return bytes
    if compression in (1, 2):
        import lz4.frame

        return lz4.frame.decompress
    if compression in (3, 4):
        try:
            zstd = require("zstandard", "inivation", "ZSTD-compressed AEDAT4 files")
        except MissingDependencyError as exc:
            raise UnsupportedFeatureError(
                "this AEDAT4 file is ZSTD-compressed and the 'zstandard' package is not installed: "
                "pip install zstandard (or re-export the file with LZ4 compression in DV)", path, len(MAGIC) + 4
            ) from exc
        dctx = zstd.ZstdDecompressor()

        def unzstd(data: bytes) -> bytes:
            return dctx.decompress(data, max_output_size=_MAX_PACKET)

        return unzstd
    raise EventFormatError(f"unknown AEDAT4 compression type {compression} in the IOHeader", path, len(MAGIC) + 4)


def _parse_streams(xml_text: str, path: Path, offset: int) -> dict[int, dict]:
    """Stream id -> {type, width, height, name} from the IOHeader's infoNode XML."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise EventFormatError(f"the IOHeader's stream description is not valid XML ({exc})", path, offset) from exc
    streams: dict[int, dict] = {}
    for out_info in root.iter("node"):
        if out_info.get("name") != "outInfo":
            continue
        for node in out_info.findall("node"):
            try:
                sid = int(node.get("name", ""))
            except ValueError:
                continue
            attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
            info = {a.get("key"): (a.text or "") for a in node.findall("node[@name='info']/attr")}
            entry = {"type": attrs.get("typeIdentifier", ""), "name": attrs.get("originalOutputName", "")}
            try:
                entry["width"] = int(info["sizeX"]) if "sizeX" in info else None
                entry["height"] = int(info["sizeY"]) if "sizeY" in info else None
            except ValueError as exc:
                raise EventFormatError(f"stream {sid} has a non-integer sizeX/sizeY ({exc})", path, offset) from exc
            streams[sid] = entry
    return streams


_OK, _BAD_POLARITY, _OUTSIDE, _BACKWARDS = 0, 1, 2, 3


def convert_words_reference(words: np.ndarray, out: np.ndarray, width: int, height: int,
                            last_t: int) -> tuple[int, int]:
    """dv Event words -> EVENT_DTYPE words, checking each event; the numpy statement of :func:`convert_words`.

    ``words`` and ``out`` are (n, 2) int64 views: a dv Event is ``t`` then ``x | y << 16 | on << 32``
    (plus padding), an eventclip event is ``x | y << 16 | p << 32`` then ``t``. Returns
    ``(_OK, -1)`` or the status and index of the first event that has a polarity byte other than
    0/1, lies outside ``width`` x ``height`` (x, y are int16, so negatives are outside too) or is
    earlier than its predecessor (``last_t`` for the first). ``out`` is undefined after a failure.
    """
    n = len(words)
    if n == 0:
        return _OK, -1
    low = words[:, 1] & np.int64((1 << 40) - 1)
    t = words[:, 0]
    x, y, p = low & 0xFFFF, (low >> 16) & 0xFFFF, low >> 32
    bad_p = p > 1
    bad_xy = (x >= width) | (y >= height)
    prev = np.empty(n, dtype=np.int64)
    prev[0] = last_t
    prev[1:] = t[:-1]
    bad_t = t < prev
    bad = bad_p | bad_xy | bad_t
    if bad.any():
        i = int(np.argmax(bad))
        return (_BAD_POLARITY if bad_p[i] else _OUTSIDE if bad_xy[i] else _BACKWARDS), i
    out[:, 0] = low
    out[:, 1] = t
    return _OK, -1


def _convert_words_py(words, out, width, height, last_t):
    """Kernel body (compiled by numba): one pass that converts and checks, stopping at the first bad event."""
    prev = last_t
    for i in range(words.shape[0]):
        low = words[i, 1] & 0xFFFFFFFFFF
        t = words[i, 0]
        if (low >> 32) > 1:
            return _BAD_POLARITY, i
        if (low & 0xFFFF) >= width or ((low >> 16) & 0xFFFF) >= height:
            return _OUTSIDE, i
        if t < prev:
            return _BACKWARDS, i
        out[i, 0] = low
        out[i, 1] = t
        prev = t
    return _OK, -1


_kernel = None


def convert_words(words: np.ndarray, out: np.ndarray, width: int, height: int, last_t: int) -> tuple[int, int]:
    """Numba-compiled twin of :func:`convert_words_reference` (same arguments, same result)."""
    global _kernel
    if _kernel is None:
        import numba

        _kernel = numba.njit(nogil=True, cache=True)(_convert_words_py)
    status, index = _kernel(words, out, np.int64(width), np.int64(height), np.int64(last_t))
    return int(status), int(index)


class Aedat4Reader(EventReader):
    """Streams the events of one AEDAT 4.0 events stream in blocks of about ``block_events`` events.

    ``stream_id`` picks the events stream when a file has several (stereo rigs); by default the
    lowest-numbered ``EVTS`` stream. Geometry comes from the stream's ``sizeX``/``sizeY``; a
    caller-given geometry overrides it. Every event is checked against the geometry and for
    non-decreasing time (dv requires both), raising EventFormatError with the packet's offset.
    ``prefetch`` packets are decompressed ahead in one worker thread (0: no thread).
    """

    format_name = "aedat4"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, stream_id: int | None = None,
                 block_events: int = 1 << 20, prefetch: int = 2) -> None:
        super().__init__(path, geometry)
        self.block_events = block_events
        self.prefetch = prefetch
        self._fh = open(self.path, "rb")
        try:
            self._read_header(stream_id)
        except BaseException:
            self._fh.close()
            raise

    def _read_header(self, stream_id: int | None) -> None:
        path = self.path
        self._file_size = os.fstat(self._fh.fileno()).st_size
        head = self._fh.read(len(MAGIC) + 4)
        if not head.startswith(MAGIC):
            if len(head) < len(MAGIC) and MAGIC.startswith(head):
                raise TruncatedFileError("file ends inside the AEDAT4 magic line", path, len(head))
            raise EventFormatError("not an AEDAT 4.0 file: it does not start with '#!AER-DAT4.0\\r\\n'", path, 0)
        if len(head) < len(MAGIC) + 4:
            raise TruncatedFileError("file ends before the IOHeader size", path, len(MAGIC))
        (size,) = struct.unpack_from("<I", head, len(MAGIC))
        start = len(MAGIC) + 4
        if size < 8 or size > _MAX_HEADER:
            raise EventFormatError(f"IOHeader size {size} bytes is implausible", path, len(MAGIC))
        buf = self._fh.read(size)
        if len(buf) < size:
            raise TruncatedFileError(f"file ends inside the {size}-byte IOHeader", path, start + len(buf))
        if buf[4:8] != b"IOHE":
            raise EventFormatError(f"IOHeader identifier is {bytes(buf[4:8])!r}, expected b'IOHE'", path, start + 4)
        fb = _Flatbuffer(buf, path, start, compressed=False)
        fields = fb.table_fields(fb.u32(0))
        compression = fb.scalar(fields, 0, "<i", 0)
        data_table = fb.scalar(fields, 1, "<q", -1)
        xml_pos = fb.field(fields, 2)
        if not xml_pos:
            raise EventFormatError("IOHeader has no stream description (infoNode)", path, start)
        xml_at = xml_pos + fb.u32(xml_pos)
        xml_len = fb.u32(xml_at)
        if xml_at + 4 + xml_len > len(buf):
            raise EventFormatError("IOHeader's infoNode string runs past the header", path, start + xml_at)
        try:
            xml_text = buf[xml_at + 4 : xml_at + 4 + xml_len].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventFormatError(f"IOHeader's infoNode is not UTF-8 ({exc})", path, start + xml_at) from exc
        self._decompress = _decompressor(compression, path)
        streams = _parse_streams(xml_text, path, start + xml_at)
        events_ids = sorted(sid for sid, s in streams.items() if s["type"] == "EVTS")
        if stream_id is None:
            if not events_ids:
                raise EventFormatError("the file declares no events (EVTS) stream", path, start + xml_at)
            stream_id = events_ids[0]
        elif stream_id not in events_ids:
            raise EventFormatError(
                f"stream {stream_id} is not an events stream; events streams here: {events_ids}", path, start + xml_at
            )
        self.stream_id = stream_id
        info = streams[stream_id]
        if self.geometry is None:
            if not info["width"] or not info["height"] or info["width"] <= 0 or info["height"] <= 0:
                raise GeometryError(
                    f"events stream {stream_id} declares no positive sizeX/sizeY; pass the sensor size "
                    "(--geometry WIDTHxHEIGHT, or geometry=(w, h) in Python)",
                    path, start + xml_at,
                )
            self.geometry = Geometry(info["width"], info["height"])
        self._data_start = start + size
        # dv writes dataTablePosition = -1 first and patches it on close: -1 means "read to the end"
        # (an interrupted recording); a position past the end means the file was cut.
        self._data_end = data_table if data_table >= 0 else self._file_size
        if data_table >= 0 and data_table < self._data_start:
            raise EventFormatError(f"dataTablePosition {data_table} points inside the header", path, start)
        self.metadata = {
            "compression": COMPRESSION_NAMES.get(compression, str(compression)),
            "streams": streams,
            "stream_id": stream_id,
            "data_table_position": data_table,
        }

    def _packets(self) -> Iterator[tuple[int, bytes]]:
        """Yield (file offset, raw bytes) of each packet of the chosen stream; skip the others."""
        fh, path = self._fh, self.path
        pos = self._data_start
        fh.seek(pos)
        while pos < self._data_end:
            head = fh.read(8)
            if len(head) < 8:
                what = "inside a packet header" if head else f"before dataTablePosition {self._data_end}"
                raise TruncatedFileError(f"file ends {what}", path, pos)
            sid, size = struct.unpack("<ii", head)
            if size <= 0 or size > _MAX_PACKET:
                raise EventFormatError(f"packet size {size} is invalid", path, pos)
            end = min(self._data_end, self._file_size)
            if pos + 8 + size > end:
                raise TruncatedFileError(
                    f"packet of {size} bytes runs past the end of the packet data (byte {end})", path, pos
                )
            if sid == self.stream_id:
                data = fh.read(size)
                if len(data) < size:  # the size was checked at open: another process cut the file since
                    raise file_shrank(path, pos)
                yield pos, data
            else:
                fh.seek(size, os.SEEK_CUR)
            pos += 8 + size

    def _decode_packet(self, pos: int, raw: bytes) -> np.ndarray:
        """One packet -> a uint64 (n, 2) view of its Event structs (zero-copy over the decompressed bytes)."""
        try:
            buf = self._decompress(raw)
        except Exception as exc:  # lz4/zstd raise their own types for corrupt data
            raise EventFormatError(f"packet does not decompress ({type(exc).__name__}: {exc})", self.path, pos) from exc
        fb = _Flatbuffer(buf, self.path, pos, compressed=self._decompress is not bytes)
        if len(buf) < 12 or fb.u32(0) + 4 > len(buf):
            raise fb.error("packet's size prefix does not match its length", 0)
        if buf[8:12] != b"EVTS":
            raise fb.error(f"packet of an events stream has identifier {bytes(buf[8:12])!r}, expected b'EVTS'", 8)
        body = memoryview(buf)[4 : 4 + fb.u32(0)]
        inner = _Flatbuffer(body, self.path, pos, compressed=True)
        fields = inner.table_fields(inner.u32(0))
        start, count = inner.vector(fields, 0, 16)
        if count == 0:
            return np.empty((0, 2), dtype=np.uint64)
        if (4 + start) % 8:
            words = np.frombuffer(body, dtype=np.uint8, count=count * 16, offset=start).copy().view(np.uint64)
        else:
            words = np.frombuffer(buf, dtype=np.uint64, count=count * 2, offset=4 + start)
        return words.reshape(count, 2)

    def _decoded_packets(self) -> Iterator[tuple[int, np.ndarray]]:
        """(offset, Event words) per packet, decompressing up to ``prefetch`` packets ahead in a worker thread.

        lz4/zstd and the numba conversion both release the GIL, so decompressing the next packets
        overlaps converting this one; errors surface in file order when their packet is reached.
        Packets under ``PREFETCH_MIN_BYTES`` (as stored) are decoded in this thread instead: handing
        one to the worker costs more than decompressing it (a real 112 k-event DVXplorer file of
        ~380-event packets: 7.9 ms with every packet handed over, 3.3 ms with none).
        """
        if self.prefetch <= 0:
            for pos, raw in self._packets():
                yield pos, self._decode_packet(pos, raw)
            return
        pending: deque = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aedat4-lz4") as pool:
            try:
                for pos, raw in self._packets():
                    if len(raw) >= PREFETCH_MIN_BYTES:
                        job = pool.submit(self._decode_packet, pos, raw)
                    else:
                        job = Future()  # decoded here, but delivered (or raised) in file order
                        try:
                            job.set_result(self._decode_packet(pos, raw))
                        except EventFormatError as exc:
                            job.set_exception(exc)
                    pending.append((pos, job))
                    while pending and (len(pending) > self.prefetch or pending[0][1].done()):
                        pos0, future = pending.popleft()
                        yield pos0, future.result()
                while pending:
                    pos0, future = pending.popleft()
                    yield pos0, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

    def _raise(self, status: int, index: int, words: np.ndarray, pos: int) -> None:
        """Turn a conversion failure (status, event index within the packet) into a typed error."""
        signed = words.view(np.int64)
        w1, t = int(signed[index, 1]), int(signed[index, 0])
        x, y, p = ((w1 + 0x8000) & 0xFFFF) - 0x8000, ((w1 >> 16) + 0x8000 & 0xFFFF) - 0x8000, (w1 >> 32) & 0xFF
        if status == _BAD_POLARITY:
            raise EventFormatError(f"event {index} of the packet has polarity byte {p} (must be 0 or 1)",
                                   self.path, pos)
        if status == _OUTSIDE:
            raise GeometryError(
                f"event {index} of the packet at (x={x}, y={y}) lies outside the sensor geometry {self.geometry}",
                self.path, pos,
            )
        raise EventFormatError(f"event {index} of the packet goes back in time (t={t} µs)", self.path, pos)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Blocks of about ``block_events`` events. On bad data (a cut or corrupt packet, a bad event)
        the valid events before it are yielded first and the error is raised after them, so a
        recording cut short by a crash still gives up everything it holds."""
        last_t = np.iinfo(np.int64).min
        width, height = self.geometry.width, self.geometry.height
        block = np.empty(0, dtype=EVENT_DTYPE)
        filled = 0
        packets = self._decoded_packets()
        while True:
            try:
                pos, words = next(packets)
            except StopIteration:
                break
            except EventFormatError:
                if filled:
                    yield block[:filled]
                raise
            n = len(words)
            if n == 0:
                continue
            if filled + n > len(block):
                if filled:
                    yield block[:filled]
                block = np.empty(max(self.block_events, n), dtype=EVENT_DTYPE)
                filled = 0
            out = block[filled : filled + n].view(np.int64).reshape(n, 2)
            status, index = convert_words(words.view(np.int64), out, width, height, last_t)
            if status:
                if filled + index:  # the kernel converted the packet's events before the bad one
                    yield block[: filled + index]
                self._raise(status, index, words, pos)
            last_t = int(out[-1, 1])
            filled += n
        if filled:
            yield block[:filled]

    def close(self) -> None:
        self._fh.close()


def _align(buf: bytearray, n: int) -> None:
    buf.extend(b"\0" * (-len(buf) % n))


def _io_header(compression: int, data_table: int, info_xml: str) -> bytes:
    """IOHeader table laid out forwards, like dv's own: int64 8-aligned counting the size prefix."""
    xml = info_xml.encode()
    buf = bytearray(struct.pack("<I4s", 24, b"IOHE"))  # root table at 24, file identifier
    buf += b"\0" * 2
    vtable = len(buf)  # 10: compression@4, infoNode@8, dataTablePosition@12
    buf += struct.pack("<HHHHH", 10, 20, 4, 12, 8) + b"\0" * 4
    table = len(buf)  # 24
    buf += struct.pack("<iiIq", table - vtable, compression, 12, data_table)
    buf += struct.pack("<I", len(xml)) + xml + b"\0"
    _align(buf, 8)
    return bytes(buf)


_HEADER_DATA_TABLE_AT = len(MAGIC) + 4 + 36
"""File offset of IOHeader.dataTablePosition in files we write (rewritten on close)."""


def _event_packet(words: np.ndarray) -> bytes:
    """A size-prefixed EventPacket flatbuffer ('EVTS') around (n, 2) uint64 Event words."""
    n = len(words)
    # [size u32][root u32][ident 4][pad 2][vtable 6][table: soffset, uoffset][len u32][events...]
    head = struct.pack("<II4s", 0, 0, b"EVTS")  # 12 bytes
    vtable_rel = 8 + 2
    head += b"\0\0" + struct.pack("<HHH", 6, 8, 4)  # bytes 12..19
    table_rel = 16
    head += struct.pack("<iI", table_rel - vtable_rel, 4)  # table at rel 16 (abs 20); vector at rel 24
    head += struct.pack("<I", n)  # abs 28; events at abs 32 (8-aligned)
    size = len(head) + 16 * n
    head = struct.pack("<II", size - 4, table_rel) + head[8:]
    return head + words.tobytes()


def _info_xml(geometry: Geometry, source: str) -> str:
    return (
        '<dv version="2.0">\n'
        '    <node name="outInfo" path="/mainloop/Recorder/outInfo/">\n'
        '        <node name="0" path="/mainloop/Recorder/outInfo/0/">\n'
        '            <attr key="compression" type="string">LZ4</attr>\n'
        '            <attr key="originalModuleName" type="string">eventclip</attr>\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        '            <node name="info" path="/mainloop/Recorder/outInfo/0/info/">\n'
        f'                <attr key="sizeX" type="int">{geometry.width}</attr>\n'
        f'                <attr key="sizeY" type="int">{geometry.height}</attr>\n'
        f'                <attr key="source" type="string">{source}</attr>\n'
        '                <attr key="tsOffset" type="long">0</attr>\n'
        "            </node>\n"
        "        </node>\n"
        "    </node>\n"
        "</dv>\n"
    )


class Aedat4Writer(EventWriter):
    """Writes one LZ4-compressed events stream (id 0), readable by dv-processing and by our reader.

    Events go out in packets of ``packet_events`` (dv's recorder uses a few thousand to tens of
    thousands per packet). ``close`` appends the file data table (packet index with time ranges)
    that dv uses for seeking, and patches its position into the IOHeader.
    """

    format_name = "aedat4"

    def __init__(self, path: PathLike, geometry: Geometry, *, packet_events: int = 32768,
                 source: str = "eventclip") -> None:
        super().__init__(path, geometry)
        import lz4.frame

        self._compress = lz4.frame.compress
        self.packet_events = packet_events
        self._index: list[tuple[int, int, int, int, int]] = []
        self._last_t = np.iinfo(np.int64).min
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._fh = open(self.path, "wb")
        header = _io_header(1, -1, _info_xml(geometry, source))
        self._fh.write(MAGIC + struct.pack("<I", len(header)) + header)
        self._closed = False

    def write(self, events: np.ndarray) -> None:
        events = as_events(events)
        if len(events) == 0:
            return
        bad = ((events["x"] >= self.geometry.width) | (events["y"] >= self.geometry.height)
               | (events["p"] > 1) | (events["p"] < 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"event {i} (x={events['x'][i]}, y={events['y'][i]}, p={events['p'][i]}) "
                             f"does not fit the {self.geometry} sensor with polarity 0/1")
        t = events["t"]
        if t[0] < self._last_t or (np.diff(t) < 0).any():
            raise ValueError("AEDAT4 events must be written in non-decreasing time order")
        self._last_t = int(t[-1])
        self._pending.append(events)
        self._pending_n += len(events)
        if self._pending_n >= self.packet_events:
            joined = np.concatenate(self._pending, dtype=EVENT_DTYPE)
            cut = len(joined) - len(joined) % self.packet_events
            for i in range(0, cut, self.packet_events):
                self._write_packet(joined[i : i + self.packet_events])
            rest = joined[cut:]
            self._pending, self._pending_n = ([rest], len(rest)) if len(rest) else ([], 0)

    def _write_packet(self, events: np.ndarray) -> None:
        n = len(events)
        words = np.empty((n, 2), dtype=np.uint64)
        src = events.view(np.uint64).reshape(n, 2)
        words[:, 0] = src[:, 1]
        np.bitwise_and(src[:, 0], _LOW40, out=words[:, 1])
        payload = self._compress(_event_packet(words))
        offset = self._fh.tell() + 8  # dv's index points at the payload, after the packet header
        self._fh.write(struct.pack("<ii", 0, len(payload)))
        self._fh.write(payload)
        self._index.append((offset, len(payload), n, int(events["t"][0]), int(events["t"][-1])))

    def _data_table(self) -> bytes:
        """FileDataTable ('FTAB'): one FileDataDefinition per packet, laid out forwards."""
        n = len(self._index)
        buf = bytearray(struct.pack("<II4s", 0, 0, b"FTAB"))
        buf += b"\0\0" + struct.pack("<HHH", 6, 8, 4)  # FileDataTable vtable at rel 10
        root = len(buf) - 4  # rel 16
        buf += struct.pack("<iI", root - 10, 0)  # soffset, uoffset to vector (patched)
        vec_field = len(buf) - 4
        vec = len(buf)
        struct.pack_into("<I", buf, vec_field, vec - vec_field)
        buf += struct.pack("<I", n)
        slots = len(buf)
        buf += b"\0" * (4 * n)
        # FileDataDefinition vtable (shared): ByteOffset@8, PacketInfo@16, NumElements@24, TsStart@32, TsEnd@40
        _align(buf, 2)
        dvt = len(buf)
        buf += struct.pack("<7H", 14, 48, 8, 16, 24, 32, 40)
        for i, (offset, size, count, t0, t1) in enumerate(self._index):
            _align(buf, 8)
            table = len(buf)
            struct.pack_into("<I", buf, slots + 4 * i, table - (slots + 4 * i))
            buf += struct.pack("<i", table - dvt) + b"\0" * 4
            buf += struct.pack("<qiiqqq", offset, 0, size, count, t0, t1)
        _align(buf, 8)
        struct.pack_into("<II", buf, 0, len(buf) - 4, root)
        return bytes(buf)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._pending_n:
                joined = np.concatenate(self._pending, dtype=EVENT_DTYPE)
                for i in range(0, len(joined), self.packet_events):
                    self._write_packet(joined[i : i + self.packet_events])
            position = self._fh.tell()
            self._fh.write(self._compress(self._data_table()))
            self._fh.seek(_HEADER_DATA_TABLE_AT)
            self._fh.write(struct.pack("<q", position))
        finally:
            self._fh.close()


register_format(
    FormatSpec(
        name="aedat4",
        description="iniVation AEDAT 4.0 (DV software, dv-processing); events stream, others skipped",
        extensions=(".aedat4",),
        sniff=_sniff,
        reader=Aedat4Reader,
        writer=Aedat4Writer,
        sniff_order=40,
    )
)
