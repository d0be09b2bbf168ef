"""Streaming conversion between formats: read blocks from one file, write them to another."""

from __future__ import annotations

from pathlib import Path

from eventclip.events import Geometry
from eventclip.io.base import PathLike
from eventclip.io.errors import EventFormatError


def convert(src: PathLike, dst: PathLike, *, format: str | None = None, in_format: str | None = None,
            geometry: Geometry | tuple[int, int] | None = None) -> int:
    """Copy every event of ``src`` into ``dst`` (format from ``format`` or the extension); returns the count.

    Memory is bounded by one reader block. If reading or writing fails, the partial ``dst`` is
    deleted so that no truncated file is left looking complete.
    """
    from eventclip.io import open_events, open_writer
    from eventclip.io.detect import writable_format

    writable_format(dst, format)  # fail before creating anything
    if Path(src).resolve() == Path(dst).resolve():
        raise EventFormatError("input and output are the same file; write to another path", src)
    n = 0
    with open_events(src, format=in_format, geometry=geometry) as stream:
        writer = open_writer(dst, stream.geometry, format=format)
        try:
            for chunk in stream:
                writer.write(chunk.events)
                n += len(chunk.events)
            writer.close()
        except BaseException:
            writer.close()
            Path(dst).unlink(missing_ok=True)
            raise
    return n
