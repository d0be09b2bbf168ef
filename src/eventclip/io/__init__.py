"""Event file I/O: read and write event-camera recordings in the field's formats.

Python API::

    from eventclip.io import open_events, read_events, write_events
    with open_events("rec.raw", delta_t_us=10_000) as stream:   # 10 ms chunks, bounded memory
        for chunk in stream:                                     # EventChunk(events, geometry, t_end_us)
            ...
    chunk = read_events("small.dat")                            # everything at once
    write_events("out.raw", chunk.events, chunk.geometry)       # format from the extension (.raw -> evt3)

Each format lives in its own module and registers a :class:`FormatSpec` at import time; this
package imports every public module of itself once it is defined (``FORMATS.discover()``, see
:mod:`eventclip.plugins`), so :data:`FORMATS` is complete once ``eventclip.io`` is imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip import _forksafe
from eventclip.events import EVENT_DTYPE, EventChunk, Geometry, concat_events
from eventclip.io.base import FORMATS, EventReader, EventWriter, FormatSpec, PathLike, register_format
from eventclip.io.chunking import chunk_blocks, chunk_by_count, chunk_by_time
from eventclip.io.detect import detect_format, get_format, known_formats, writable_format
from eventclip.io.errors import (
    EventFileIsADirectoryError,
    EventFileNotFoundError,
    EventFormatError,
    GeometryError,
    NotARegularFileError,
    TruncatedFileError,
    UnknownFormatError,
    UnsupportedFeatureError,
)

_forksafe.install()  # readers decode with numba kernels, in threads: see eventclip._forksafe


class EventStream:
    """An open event file: iterate it for :class:`EventChunk` objects; use it as a context manager.

    Chunking: ``n_events`` gives chunks of that many events (the last holds the rest);
    ``delta_t_us`` gives consecutive half-open time spans ``[t0 + kΔ, t0 + (k+1)Δ)`` with
    ``t0 = floor(t_first/Δ)·Δ``, empty spans included, each with ``t_end_us`` set; neither gives
    the reader's own blocks. The stream can be iterated once.
    """

    def __init__(
        self,
        reader: EventReader,
        spec: FormatSpec,
        *,
        n_events: int | None = None,
        delta_t_us: int | None = None,
    ) -> None:
        if n_events is not None and delta_t_us is not None:
            raise ValueError("pass n_events or delta_t_us, not both")
        if n_events is not None and n_events <= 0:
            raise ValueError(f"n_events must be positive, got {n_events}")
        if delta_t_us is not None and delta_t_us <= 0:
            raise ValueError(f"delta_t_us must be positive (µs), got {delta_t_us}")
        self.reader = reader
        self.format = spec.name
        self.spec = spec
        self.n_events = n_events
        self.delta_t_us = delta_t_us
        self._iterated = False

    @property
    def geometry(self) -> Geometry:
        """Sensor size (width, height) in pixels."""
        assert self.reader.geometry is not None
        return self.reader.geometry

    @property
    def metadata(self) -> dict:
        """Format-specific header information (e.g. RAW header keys, trigger events)."""
        return self.reader.metadata

    @property
    def path(self) -> Path:
        """The file being read."""
        return self.reader.path

    def __iter__(self) -> Iterator[EventChunk]:
        if self._iterated:
            raise RuntimeError(f"{self.reader.path}: an EventStream can be iterated only once; open it again")
        self._iterated = True
        meta = {"format": self.format}
        if self.n_events is not None:
            return chunk_by_count(iter(self.reader), self.geometry, self.n_events, meta)
        if self.delta_t_us is not None:
            return chunk_by_time(iter(self.reader), self.geometry, self.delta_t_us, meta)
        return chunk_blocks(iter(self.reader), self.geometry, meta)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _geometry_arg(geometry: Geometry | tuple[int, int] | None) -> Geometry | None:
    if geometry is None or isinstance(geometry, Geometry):
        return geometry
    width, height = geometry
    return Geometry(int(width), int(height))


def open_events(
    path: PathLike,
    *,
    format: str | None = None,
    geometry: Geometry | tuple[int, int] | None = None,
    n_events: int | None = None,
    delta_t_us: int | None = None,
) -> EventStream:
    """Open an event file for streaming (bounded memory). See :class:`EventStream` for chunking.

    ``format`` skips detection; ``geometry`` (width, height) overrides or supplies the sensor size
    (required for RAW files whose header names no geometry or known sensor).
    """
    spec = get_format(format, path) if format is not None else detect_format(path)
    reader = spec.reader(path, _geometry_arg(geometry))
    try:
        return EventStream(reader, spec, n_events=n_events, delta_t_us=delta_t_us)
    except Exception:
        reader.close()
        raise


def read_events(
    path: PathLike, *, format: str | None = None, geometry: Geometry | tuple[int, int] | None = None
) -> EventChunk:
    """Read a whole (small) file into one EventChunk; ``meta`` holds the format name and metadata.

    Readers with a ``read_all()`` method (RAW, DAT) decode the file straight into one array.
    """
    with open_events(path, format=format, geometry=geometry) as stream:
        read_all = getattr(stream.reader, "read_all", None)
        if read_all is not None:  # readers that can decode straight into one array skip the concatenation
            events = read_all()
        else:
            blocks = [chunk.events for chunk in stream]
            events = concat_events(blocks)
        return EventChunk(events, stream.geometry, None, {"format": stream.format, **stream.metadata})


def open_writer(path: PathLike, geometry: Geometry | tuple[int, int], *, format: str | None = None) -> EventWriter:
    """Open a writer; the format comes from ``format`` or the extension (``.raw`` means EVT 3.0)."""
    spec = writable_format(path, format)
    assert spec.writer is not None
    geo = _geometry_arg(geometry)
    assert geo is not None
    return spec.writer(path, geo)


def write_events(
    path: PathLike, events: np.ndarray, geometry: Geometry | tuple[int, int], *, format: str | None = None
) -> None:
    """Write one array of events (EVENT_DTYPE, time-ordered) to ``path``."""
    with open_writer(path, geometry, format=format) as writer:
        writer.write(events)


__all__ = [
    "EVENT_DTYPE",
    "FORMATS",
    "EventChunk",
    "EventFileIsADirectoryError",
    "EventFileNotFoundError",
    "EventFormatError",
    "EventReader",
    "EventStream",
    "EventWriter",
    "FormatSpec",
    "Geometry",
    "GeometryError",
    "NotARegularFileError",
    "TruncatedFileError",
    "UnknownFormatError",
    "UnsupportedFeatureError",
    "detect_format",
    "get_format",
    "known_formats",
    "open_events",
    "open_writer",
    "read_events",
    "register_format",
    "write_events",
]

FORMATS.discover()  # last: format modules (and io.convert) import names defined above
