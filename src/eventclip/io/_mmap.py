"""Memory-map the word region of an event file (read-only), so decoders read the page cache directly.

Copying a file into a fresh numpy array (``np.fromfile``) costs a full extra pass over the data
and its page faults; decoding from a read-only map is ~4x faster for whole-file reads of DAT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def map_words(path: Path, dtype: np.dtype | str, offset: int, count: int, shape: tuple[int, ...] | None = None
              ) -> np.ndarray:
    """``count`` items of ``dtype`` starting at byte ``offset`` (an empty array when ``count`` is 0)."""
    dtype = np.dtype(dtype)
    shape = shape or (count,)
    if count <= 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
