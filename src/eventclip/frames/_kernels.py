"""Numba kernels behind :mod:`eventclip.frames.accumulate`; plain-numpy references live there.

The kernels read the events' raw bytes: in EVENT_DTYPE each event is 16 bytes and its first
4 bytes are ``x`` (u2) then ``y`` (u2), so one little-endian uint32 load gives both
(``x = v & 0xFFFF``, ``y = v >> 16``) and the loop touches one word per event.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows(words: np.ndarray, pol: np.ndarray, offsets: np.ndarray, width: int, height: int,
                  per_polarity: bool, counts: np.ndarray) -> int:
    """Add one count per event into ``counts`` (flat, B*C*H*W + 1 uint32; the last slot is a trash bin).

    ``words`` is the uint32 view of the events (stride 4 words per event, x|y<<16 in word 0),
    ``pol`` the int16 view (polarity at index 2 of each 8-halfword event). An event outside
    ``width`` x ``height`` is counted in the trash slot instead of a pixel (branch-free), and the
    function returns how many there were, so the caller can raise with the first offender.
    """
    plane = width * height
    channels = 2 if per_polarity else 1
    trash = counts.shape[0] - 1
    n_windows = offsets.shape[0] - 1
    for b in range(n_windows):
        base = b * channels * plane
        for i in range(offsets[b], offsets[b + 1]):
            v = words[4 * i]
            x = v & 0xFFFF
            y = v >> 16
            ok = (x < width) & (y < height)
            idx = base + y * width + x
            if per_polarity:
                idx += (pol[8 * i + 2] > 0) * plane
            idx = idx if ok else trash
            counts[idx] += 1
    return counts[trash]
