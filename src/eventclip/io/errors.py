"""Typed errors for event file I/O. Each names the file and, where known, the byte offset."""

from __future__ import annotations

import os

from eventclip.errors import EventclipError


class EventFormatError(EventclipError, ValueError):
    """A file is not valid in the format being read (corrupt, truncated, lying header, ...).

    ``path`` and ``offset`` (bytes from the start of the file) locate the problem.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, offset: int | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.offset = offset
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if offset is not None:
                where += f" at byte {offset}"
            where += ": "
        super().__init__(where + message)
        self.message = message


class UnknownFormatError(EventFormatError):
    """The file's content and extension match no format eventclip reads."""


class TruncatedFileError(EventFormatError):
    """The file ends in the middle of a record or a header."""


def file_shrank(path: str | os.PathLike, offset: int, streamed: bool = True) -> TruncatedFileError:
    """The error for a file that is shorter than when it was opened (another process truncated or
    rewrote it while it was read); ``offset`` is where the missing data starts. ``streamed``: the
    events before it were handed over (a stream), else nothing was returned (a whole-file read)."""
    try:
        size = f"to {os.stat(path).st_size} bytes "
    except OSError:
        size = ""
    outcome = ("the events before this offset were handed over" if streamed
               else "nothing was returned; read the file again once it is complete")
    return TruncatedFileError(f"the file shrank {size}while being read (another process truncated or rewrote it); "
                              f"{outcome}", path, offset)


class GeometryError(EventFormatError):
    """The sensor geometry is missing (pass width/height) or an event lies outside it."""


class UnsupportedFeatureError(EventFormatError):
    """A valid file uses a feature this build cannot decode (e.g. ECF-compressed HDF5 without the plugin)."""
