"""The contract every file format implements, and the registry that finds them.

A format module (``io/prophesee_raw.py``, ``io/aedat4.py``, ...) defines a reader class and
optionally a writer class, and calls :func:`register_format` at import time: formats are the
``FORMATS`` family of the one plugin pattern (:mod:`eventclip.plugins`), found by importing every
public module of ``eventclip.io``. A format has no config model (it is chosen by name or by
sniffing, and its readers take no options), so ``FORMATS.config_union()`` is not defined. Readers yield
decoded blocks of any size (bounded memory); :mod:`eventclip.io` re-slices them by event count
or time span for callers.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eventclip.events import Geometry
from eventclip.io.errors import UnknownFormatError, check_event_file
from eventclip.plugins import Registry, Unavailable

PathLike = str | os.PathLike


class EventReader(ABC):
    """Decodes one file into blocks of events (EVENT_DTYPE, time-ordered where the format is).

    ``geometry`` is known after construction (from the header, the format, or the caller);
    a reader that cannot know it raises :class:`~eventclip.io.errors.GeometryError`.
    Decoding errors raise :class:`~eventclip.io.errors.EventFormatError` with the byte offset.
    """

    format_name: str = ""

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        """Raises the OSError subclasses of :func:`~eventclip.io.errors.check_event_file` for a path
        that is missing, a folder, or not a regular file (a FIFO would block the first read forever)."""
        self.path = check_event_file(path)
        self.geometry: Geometry | None = geometry
        self.metadata: dict = {}

    @abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield decoded event blocks in file order until the end of the file."""

    def close(self) -> None:  # noqa: B027 - deliberately a no-op default, not abstract
        """Release the file handle. Safe to call twice."""

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventWriter(ABC):
    """Encodes blocks of events into one file; ``close`` finalises it (headers, indexes)."""

    format_name: str = ""

    def __init__(self, path: PathLike, geometry: Geometry) -> None:
        self.path = Path(path)
        self.geometry = geometry

    @abstractmethod
    def write(self, events: np.ndarray) -> None:
        """Append events (EVENT_DTYPE, time-ordered)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finalise the file. Safe to call twice."""

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class FormatSpec:
    """One file format: how to recognise it and how to read (and maybe write) it.

    ``sniff(head, path)`` gets the file's first 64 KiB and returns True when the content is this
    format; it must not raise. ``extensions`` are lower-case with the dot, used only when no
    format recognises the content. ``sniff_order``: formats are sniffed (and extensions matched)
    in ascending order, so the most specific content checks come first.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes, Path], bool]
    reader: type[EventReader]
    writer: type[EventWriter] | None = None
    aliases: tuple[str, ...] = field(default=())
    sniff_order: int = 100


FORMATS: Registry[FormatSpec] = Registry("format", "eventclip.io", error=UnknownFormatError)
"""Every file format by name (and alias): one module in ``eventclip.io`` registers each."""


def register_format(spec: FormatSpec, unavailable: Unavailable | None = None) -> FormatSpec:
    """Add a format to the registry (called by each format module at import); ``unavailable`` says
    why it cannot be read here (a missing optional package), checked without importing it."""
    FORMATS.add(spec, kind=spec.name, aliases=spec.aliases, unavailable=unavailable or (lambda: None),
                capabilities={"read": True, "write": spec.writer is not None, "extensions": spec.extensions,
                              "sniff_order": spec.sniff_order})
    return spec
