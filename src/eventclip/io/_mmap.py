"""Read the record region of an event file in blocks: through a read-only memory map, or by copies.

Why two ways. A map lets a decoder read the page cache directly instead of paying for a copy first:
a 20 M-event DAT stream runs 242 Mev/s through a map and 214 Mev/s by copies on the 2-core
development machine (same process, in turns; fastest peer ~205-250). RAW streams gain on EVT 3.0
(20 M events, copies against map in alternating processes, medians of 5: 299-356 -> 378-392 Mev/s);
on EVT 2.0 the two are within the noise of each other (410-516 against 438-507). So DAT, ``.npy`` and
RAW streams read through a map by default. The operating system's rule for maps is that touching a
page past the end of a file that another process has truncated kills the reader with SIGBUS. So
each block is checked against the file's current size first (:func:`records_present`): a file cut
short *between* blocks raises TruncatedFileError naming the offset. Only a truncation in the ~1 ms
while one block is decoded is not caught. Where other processes may truncate or rewrite files in
place (or on network file systems, where an I/O error in a map is also a SIGBUS), set
``EVENTCLIP_MMAP=0`` in the environment (or ``USE_MAP = False``): blocks are then read as copies
and every failure is an exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from eventclip.io.errors import file_shrank

USE_MAP = os.environ.get("EVENTCLIP_MMAP", "1") != "0"
"""Whether :func:`file_blocks` reads through a memory map (default) or by copies (``EVENTCLIP_MMAP=0``)."""


def map_words(path: Path, dtype: np.dtype | str, offset: int, count: int, shape: tuple[int, ...] | None = None
              ) -> np.ndarray:
    """``count`` items of ``dtype`` starting at byte ``offset`` (an empty array when ``count`` is 0).

    For whole-file reads (decoded at once); streams use :func:`file_blocks`, which checks the size
    per block. A map unless :data:`USE_MAP` is off, then one copy.
    """
    dtype = np.dtype(dtype)
    shape = shape or (count,)
    if count <= 0:
        return np.empty(shape, dtype=dtype)
    if USE_MAP:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    out = np.fromfile(path, dtype=dtype, count=count, offset=offset)
    if len(out) < count:
        raise file_shrank(path, offset + len(out) * dtype.itemsize, streamed=False)
    return out.reshape(shape)


def file_blocks(path: Path, dtype: np.dtype, offset: int, count: int, block: int, width: int = 0
                ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first record index, records)`` for ``count`` records of ``dtype`` from byte ``offset``, ``block`` at a time.

    ``width`` > 0 gives each record as a row of ``width`` items of ``dtype`` (shape (n, width)).
    Through a map when :data:`USE_MAP`, else read into a fresh array per block; either way the
    file's size is checked before each block, and a file that shrank hands over the whole records
    still there, then raises (see the module docstring).
    """
    record = dtype.itemsize * max(width, 1)
    tail = (width,) if width else ()
    with open(path, "rb") as fh:
        mapped = map_open(fh, dtype, offset, (count, *tail))
        for first in range(0, count, block):
            n = min(block, count - first)
            start = offset + first * record
            whole = records_present(fh, start, n, record)
            if whole:
                yield first, mapped[first:first + whole] if mapped is not None else _read(fh, start, whole, dtype, tail)
            if whole < n:
                raise file_shrank(path, start + whole * record)


def map_open(fh: BinaryIO, dtype: np.dtype, offset: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """A read-only map of ``shape`` items of ``dtype`` from byte ``offset`` of the open file, or None when
    maps are off (:data:`USE_MAP`) or there is nothing to map. Streams check :func:`records_present`
    before touching a block of it."""
    return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape) if USE_MAP and shape[0] else None


def records_present(fh: BinaryIO, start: int, n: int, record: int) -> int:
    """How many of the ``n`` records of ``record`` bytes from byte ``start`` the open file still holds
    (fewer than ``n`` only when it shrank after it was opened): read before touching mapped pages."""
    return min(n, max(0, (os.fstat(fh.fileno()).st_size - start) // record))


def _read(fh: BinaryIO, start: int, n: int, dtype: np.dtype, tail: tuple[int, ...]) -> np.ndarray:
    """``n`` records of shape ``tail`` read from byte ``start`` into a fresh array."""
    out = np.empty((n, *tail), dtype=dtype)
    fh.seek(start)
    got = fh.readinto(out.view(np.uint8).reshape(-1))
    if got < out.nbytes:
        raise file_shrank(fh.name, start + got)
    return out
