"""Numba kernels behind :mod:`eventclip.frames.accumulate`; the plain-numpy reference lives there.

The kernels read the events' raw bytes: in EVENT_DTYPE each event is 16 bytes and its first
8 bytes hold ``x`` (u2), ``y`` (u2) and ``p`` (i2), so one little-endian int64 load gives all
three and the loop touches one word per event. The loop body has no branches: the counts index
is clamped to a trash slot (so a bad x/y can never write outside the buffer) and an OR-reduced
flag tells the caller afterwards whether any event lay outside the geometry.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows(words: np.ndarray, offsets: np.ndarray, width: int, height: int,
                  per_polarity: bool, counts: np.ndarray) -> bool:
    """Add one count per event into ``counts`` (flat uint32, B*C*H*W + 1; the last slot is the trash bin).

    ``words`` is the int64 view of the events (2 words per event; word 0 packs x | y << 16 | p << 32).
    Window b is events ``offsets[b]:offsets[b+1]``; with ``per_polarity`` ON events (p > 0) go
    to the second plane of each window. Returns True when some event lay outside the geometry:
    the counts are then meaningless and the caller raises.
    """
    plane = width * height
    channels = 2 if per_polarity else 1
    on_stride = plane if per_polarity else 0
    trash = counts.shape[0] - 1
    bad = False
    for b in range(offsets.shape[0] - 1):
        base = b * channels * plane
        for i in range(offsets[b], offsets[b + 1]):
            w = words[2 * i]
            x = w & 0xFFFF
            y = (w >> 16) & 0xFFFF
            p = (w >> 32) & 0xFFFF
            on = ((p - 1) & 0xFFFF) < 0x7FFF
            bad |= (x >= width) | (y >= height)
            counts[min(base + y * width + x + on * on_stride, trash)] += 1
    return bad
