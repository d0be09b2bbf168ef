"""iniVation/jAER AEDAT 2.0 and AEDAT 3.1 (read): the formats of DVS128-era datasets (DVS128 Gesture).

**aedat2** (jAER). ASCII header lines starting with ``#`` (the first is ``#!AER-DAT2.0``), then
big-endian 8-byte records: uint32 address, uint32 timestamp (µs). The address layout belongs to
the chip; we decode the DVS128 (``Tmpdiff128``) layout that jAER's extractor defines: bit 0 is the
raw polarity (0 = ON, 1 = OFF: jAER flips the type), bits 1-7 the raw x, bits 8-14 the raw y,
bit 15 an external (special) event. jAER shows ``x = 127 - raw_x`` with y = 0 at the *bottom*;
eventclip puts y = 0 at the top, so ``y = 127 - raw_y``. External events are counted in
``metadata['special_events']``, not returned. Other chips (``# AEChip:`` naming a DAVIS class)
raise UnsupportedFeatureError. 32-bit timestamps that wrap (a drop of more than 2**31 µs) continue
from 2**32; any other step back in time is an error.

**aedat31** (cAER / DV 3.x). Header lines from ``#!AER-DAT3.1`` to ``#!END-HEADER``, with
``#Source N: NAME`` naming the camera. Then packets: a 28-byte little-endian header (int16
eventType, int16 eventSource, int32 eventSize, eventTSOffset, eventTSOverflow, eventCapacity,
eventNumber, eventValid) followed by eventCapacity * eventSize bytes. Polarity packets
(type 1, 8-byte events) hold uint32 data (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31
x; y = 0 at the top, like caer) and an int32 timestamp; the full timestamp is
``eventTSOverflow << 31 | timestamp`` (µs). Events whose valid bit is clear were deleted by the
recorder and are skipped (counted in ``metadata['invalid_events']``); other packet types
(frames, IMU, special) are skipped and counted per type. Geometry comes from the source name
(DVS128 128x128, DAVIS240 240x180, DAVIS346 346x260, DVXplorer 640x480) or the caller.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.io.base import EventReader, FormatSpec, PathLike, register_format
from eventclip.io.errors import (
    EventFormatError,
    GeometryError,
    TruncatedFileError,
    UnsupportedFeatureError,
    file_shrank,
)
from eventclip.io.plain import checked_blocks

AEDAT2_MAGIC = b"#!AER-DAT2.0"
AEDAT31_MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
DVS128_GEOMETRY = Geometry(128, 128)
PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
_MAX_HEADER_BYTES = 1 << 20
_SOURCE_RE = re.compile(rb"^#-?Source\s+(\d+):\s*(\S+)")
_CHIP_RE = re.compile(rb"AEChip:\s*(\S+)")
_GEOMETRIES = (
    (b"DVS128", Geometry(128, 128)),
    (b"DAVIS240", Geometry(240, 180)),
    (b"DAVIS346", Geometry(346, 260)),
    (b"DVXPLORER", Geometry(640, 480)),
    (b"DAVIS640", Geometry(640, 480)),
)


def _read_header_lines(fh, path: Path, end_marker: bytes | None) -> tuple[list[bytes], int]:
    """Read ``#`` lines (until ``end_marker`` when given) and return them with the data offset."""
    lines: list[bytes] = []
    offset = 0
    while True:
        if offset > _MAX_HEADER_BYTES:
            raise EventFormatError("header is longer than 1 MiB; the file is not AEDAT", path, offset)
        if end_marker is None:
            first = fh.peek(1)[:1] if hasattr(fh, "peek") else b""
            if first != b"#":
                return lines, offset
        line = fh.readline(1 << 16)
        if not line:
            if end_marker is not None:
                raise TruncatedFileError(f"file ends before the {end_marker.decode()} line", path, offset)
            return lines, offset
        if not line.startswith(b"#"):
            raise EventFormatError(f"header line {len(lines) + 1} does not start with '#'", path, offset)
        lines.append(line.rstrip(b"\r\n"))
        offset += len(line)
        if end_marker is not None and line.startswith(end_marker):
            return lines, offset


class Aedat2Reader(EventReader):
    """Streams a jAER AEDAT 2.0 DVS128 recording in blocks of ``block_events`` records."""

    format_name = "aedat2"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_events: int = 1 << 20) -> None:
        super().__init__(path, geometry)
        self.block_events = block_events
        path = self.path
        with open(path, "rb") as fh:
            if not fh.read(len(AEDAT2_MAGIC)).startswith(AEDAT2_MAGIC):
                raise EventFormatError("not an AEDAT 2.0 file: it does not start with '#!AER-DAT2.0'", path, 0)
            fh.seek(0)
            lines, self._data_offset = _read_header_lines(fh, path, None)
        chip = next((m.group(1) for m in map(_CHIP_RE.search, lines) if m), None)
        if chip is not None and not re.search(rb"DVS128|Tmpdiff128", chip):
            raise UnsupportedFeatureError(
                f"AEDAT 2.0 from chip {chip.decode(errors='replace')} is not supported; eventclip decodes the "
                "DVS128 address layout (convert other chips to AEDAT 4 with DV)", path, 0,
            )
        size = os.stat(path).st_size
        self._count = (size - self._data_offset) // 8
        if (size - self._data_offset) % 8:
            raise TruncatedFileError(
                f"{(size - self._data_offset) % 8} trailing bytes: the last 8-byte record is cut",
                path, self._data_offset + self._count * 8,
            )
        if self.geometry is None:
            self.geometry = DVS128_GEOMETRY
        self.metadata = {"header": [ln.decode("latin1") for ln in lines], "chip": chip and chip.decode("latin1"),
                         "special_events": 0}

    def __iter__(self) -> Iterator[np.ndarray]:
        rec_dtype = np.dtype([("a", ">u4"), ("t", ">u4")])
        wraps = 0
        last_raw = None
        last_t = np.iinfo(np.int64).min
        with open(self.path, "rb") as fh:
            fh.seek(self._data_offset)
            done = 0
            while done < self._count:
                n = min(self.block_events, self._count - done)
                rec = np.fromfile(fh, dtype=rec_dtype, count=n)
                base = self._data_offset + done * 8
                if not len(rec):
                    raise file_shrank(self.path, base)
                a = rec["a"]
                raw_t = rec["t"].astype(np.int64)
                # Unwrap 32-bit time: a drop of more than 2**31 µs is a wrap, not disorder.
                prev = np.concatenate(([raw_t[0] if last_raw is None else last_raw], raw_t[:-1]))
                wrapped = (prev - raw_t) > (1 << 31)
                t = raw_t + ((wraps + np.cumsum(wrapped)) << 32)
                wraps += int(wrapped.sum())
                last_raw = int(raw_t[-1])
                special = (a & 0x8000) != 0
                self.metadata["special_events"] += int(special.sum())
                keep = np.flatnonzero(~special)
                ev = np.empty(len(keep), dtype=EVENT_DTYPE)
                ak = a[keep]
                ev["x"] = 127 - ((ak >> 1) & 0x7F)
                ev["y"] = 127 - ((ak >> 8) & 0x7F)
                ev["p"] = 1 - (ak & 1)
                ev["t"] = t[keep]
                yield from checked_blocks(ev, self.geometry, last_t, self.path,
                                          lambda i, b=base, k=keep: b + int(k[i]) * 8)
                if len(ev):
                    last_t = int(ev["t"][-1])
                if len(rec) < n:
                    raise file_shrank(self.path, base + len(rec) * 8)
                done += n


class Aedat31Reader(EventReader):
    """Streams the polarity events of an AEDAT 3.1 file packet by packet (one source)."""

    format_name = "aedat31"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, source: int | None = None) -> None:
        super().__init__(path, geometry)
        path = self.path
        with open(path, "rb") as fh:
            if not fh.read(len(AEDAT31_MAGIC)).startswith(AEDAT31_MAGIC):
                raise EventFormatError("not an AEDAT 3.1 file: it does not start with '#!AER-DAT3.1'", path, 0)
            fh.seek(0)
            lines, self._data_offset = _read_header_lines(fh, path, END_HEADER)
        sources = {}
        for line in lines:
            m = _SOURCE_RE.match(line)
            if m:
                sources[int(m.group(1))] = m.group(2).decode("latin1")
        self.source = source
        if self.geometry is None:
            names = [sources[source]] if source in sources else list(sources.values())
            for name in names:
                upper = name.upper().encode()
                self.geometry = next((g for key, g in _GEOMETRIES if upper.startswith(key)), None)
                if self.geometry is not None:
                    break
        if self.geometry is None:
            raise GeometryError(
                f"the header names no camera with a known size (sources: {sources or 'none'}); "
                "pass --geometry WIDTHxHEIGHT (geometry=Geometry(width, height) in Python)", path, 0,
            )
        self._size = os.stat(path).st_size
        self.metadata = {"sources": sources, "invalid_events": 0, "skipped_packets": {}}

    def __iter__(self) -> Iterator[np.ndarray]:
        path = self.path
        last_t = np.iinfo(np.int64).min
        pol_dtype = np.dtype([("data", "<u4"), ("ts", "<i4")])
        with open(path, "rb") as fh:
            pos = self._data_offset
            fh.seek(pos)
            while pos < self._size:
                head = fh.read(PACKET_HEADER.size)
                if len(head) < PACKET_HEADER.size:
                    if pos + PACKET_HEADER.size <= self._size:  # it was there when the file was opened
                        raise file_shrank(path, pos + len(head))
                    raise TruncatedFileError("file ends inside a 28-byte packet header", path, pos)
                etype, esource, esize, ts_offset, ts_overflow, capacity, number, valid = PACKET_HEADER.unpack(head)
                if esize <= 0 or capacity < 0 or number < 0 or number > capacity or valid > number or valid < 0:
                    raise EventFormatError(
                        f"packet header is inconsistent (type {etype}, eventSize {esize}, capacity {capacity}, "
                        f"number {number}, valid {valid})", path, pos,
                    )
                nbytes = capacity * esize
                data_at = pos + PACKET_HEADER.size
                if data_at + nbytes > self._size:
                    raise TruncatedFileError(
                        f"packet declares {nbytes} bytes of events but the file ends first", path, pos
                    )
                if self.source is None and etype == POLARITY_EVENT:
                    self.source = esource
                if etype != POLARITY_EVENT or esource != self.source:
                    key = f"type {etype} source {esource}"
                    self.metadata["skipped_packets"][key] = self.metadata["skipped_packets"].get(key, 0) + 1
                    fh.seek(nbytes, os.SEEK_CUR)
                    pos = data_at + nbytes
                    continue
                if esize != 8 or ts_offset != 4:
                    raise EventFormatError(
                        f"polarity packet has eventSize {esize} / eventTSOffset {ts_offset} (expected 8 / 4)", path, pos
                    )
                rec = np.fromfile(fh, dtype=pol_dtype, count=number)
                if number < capacity and len(rec) == number:
                    fh.seek((capacity - number) * esize, os.SEEK_CUR)
                data = rec["data"]
                is_valid = (data & 1) != 0
                # The valid bit of each event decides (eventValid in the header is only a summary).
                self.metadata["invalid_events"] += number - int(is_valid.sum())
                keep = np.flatnonzero(is_valid)
                d = data[keep]
                ev = np.empty(len(keep), dtype=EVENT_DTYPE)
                x = d >> 17
                y = (d >> 2) & 0x7FFF
                ev["x"] = np.minimum(x, 0xFFFF)
                ev["y"] = y
                ev["p"] = (d >> 1) & 1
                ts = rec["ts"][keep].astype(np.int64)
                ev["t"] = (np.int64(ts_overflow) << 31) | ts
                yield from checked_blocks(ev, self.geometry, last_t, path,
                                          lambda i, b=data_at, k=keep: b + int(k[i]) * 8, x=x, y=y, negative=ts < 0)
                if len(ev):
                    last_t = int(ev["t"][-1])
                if len(rec) < number:
                    raise file_shrank(path, data_at + len(rec) * 8)
                pos = data_at + nbytes


register_format(FormatSpec(
    name="aedat2", description="jAER AEDAT 2.0 (DVS128 address layout)", extensions=(".aedat",),
    sniff=lambda head, path: head.startswith(AEDAT2_MAGIC), reader=Aedat2Reader, sniff_order=50,
))
register_format(FormatSpec(
    name="aedat31", description="cAER AEDAT 3.1 polarity events (DVS128 Gesture)", extensions=(".aedat",),
    sniff=lambda head, path: head.startswith(AEDAT31_MAGIC), reader=Aedat31Reader, sniff_order=51,
))
