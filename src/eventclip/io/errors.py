"""Typed errors for event file I/O. Each names the file and, where known, the byte offset."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

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


class _PathOSError(EventclipError, OSError):
    """An event file that cannot be read for an operating-system reason; an :class:`OSError` too, with
    ``errno`` and ``filename`` set, so ``except OSError`` (or the specific subclass) works."""

    code = errno.EIO

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(self.code, message, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


class EventFileNotFoundError(_PathOSError, FileNotFoundError):
    """The event file does not exist."""

    code = errno.ENOENT


class EventFileIsADirectoryError(_PathOSError, IsADirectoryError):
    """A folder was given where an event file was expected."""

    code = errno.EISDIR


class NotARegularFileError(_PathOSError):
    """A FIFO, socket or device was given as an event file.

    Why refused: every reader needs a file it can size, seek or map; opening a FIFO for reading
    would wait for a writer forever, and a device may never end.
    """

    code = errno.EINVAL


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def check_event_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it names a regular file (links followed); else the OSError subclass saying why.

    Looked at before anything opens the file, since opening a FIFO blocks until a writer appears.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise EventFileNotFoundError(p, "no such event file; check the path") from None
    except OSError as exc:
        raise NotARegularFileError(p, f"cannot look at the event file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise EventFileIsADirectoryError(p, "is a folder, not an event file; give one file inside it")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise NotARegularFileError(p, f"is {kind}, not a regular file; event files are read by size and memory map, "
                                      "so pipes and devices are not supported: write the data to a file first")
    return p
