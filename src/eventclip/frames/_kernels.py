"""Numba kernels behind :mod:`eventclip.frames.accumulate`; the plain-numpy reference lives there.

The kernels read the events' raw bytes: in EVENT_DTYPE each event is 16 bytes and its first
8 bytes hold ``x`` (u2), ``y`` (u2) and ``p`` (i2), so one little-endian 64-bit load gives all
three and the loop touches one word per event. The loop body has no branches: the counts index
is clamped to a trash slot (so a bad x/y can never write outside the buffer), and an OR of
``(width-1-x) | (height-1-y)``, negative exactly when some event is outside, tells the caller
afterwards. Indices are unsigned so numba emits no negative-index wraparound code in the loop.
"""

from __future__ import annotations

import numba
import numpy as np

_U16 = np.uint64(0xFFFF)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows(words: np.ndarray, offsets: np.ndarray, width: int, height: int,
                  per_polarity: bool, counts: np.ndarray) -> bool:
    """Add one count per event into ``counts`` (flat uint32, B*C*H*W + 1; the last slot is the trash bin).

    ``words`` is the int64 view of the events (2 words per event; word 0 packs x | y << 16 | p << 32).
    Window b is events ``offsets[b]:offsets[b+1]``; with ``per_polarity`` ON events (p > 0) go
    to the second plane of each window. Returns True when some event lay outside the geometry:
    the counts are then meaningless and the caller raises.
    """
    plane = np.uint64(width * height)
    channels = np.uint64(2 if per_polarity else 1)
    on_stride = plane if per_polarity else np.uint64(0)
    trash = np.uint64(counts.shape[0] - 1)
    w_u = np.uint64(width)
    w_max = np.int64(width - 1)
    h_max = np.int64(height - 1)
    one = np.uint32(1)
    acc = np.int64(0)
    for b in range(offsets.shape[0] - 1):
        base = np.uint64(b) * channels * plane
        for i in range(np.uint64(offsets[b]), np.uint64(offsets[b + 1])):
            w = np.uint64(words[np.uint64(2) * i])
            x = w & _U16
            y = (w >> np.uint64(16)) & _U16
            p = (w >> np.uint64(32)) & _U16
            on = np.uint64(((p - np.uint64(1)) & _U16) < np.uint64(0x7FFF))
            acc |= (w_max - np.int64(x)) | (h_max - np.int64(y))
            counts[min(base + y * w_u + x + on * on_stride, trash)] += one
    return acc < 0


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows16(words: np.ndarray, offsets: np.ndarray, width: int, height: int,
                    per_polarity: bool, counts: np.ndarray, carry: np.ndarray) -> int:
    """:func:`count_windows` into uint16 counts: half the bytes to keep in cache for a random scatter.

    Why: a 1280x720 window's uint32 counts (3.7 MB, 7.4 MB per polarity) outgrow the caches,
    and the scatter's speed follows its footprint. A count that wraps past 65535 adds one to the
    same slot of ``carry`` (uint32, same length, all zero on entry; touched only on a wrap), so
    the true count is ``counts + carry * 65536``. Returns a bit set: 1 = some event lay outside
    the geometry (the counts are then meaningless), 2 = some count wrapped (``carry`` is in use).
    """
    plane = np.uint64(width * height)
    channels = np.uint64(2 if per_polarity else 1)
    on_stride = plane if per_polarity else np.uint64(0)
    trash = np.uint64(counts.shape[0] - 1)
    w_u = np.uint64(width)
    w_max = np.int64(width - 1)
    h_max = np.int64(height - 1)
    acc = np.int64(0)
    wrapped = 0
    for b in range(offsets.shape[0] - 1):
        base = np.uint64(b) * channels * plane
        for i in range(np.uint64(offsets[b]), np.uint64(offsets[b + 1])):
            w = np.uint64(words[np.uint64(2) * i])
            x = w & _U16
            y = (w >> np.uint64(16)) & _U16
            p = (w >> np.uint64(32)) & _U16
            on = np.uint64(((p - np.uint64(1)) & _U16) < np.uint64(0x7FFF))
            acc |= (w_max - np.int64(x)) | (h_max - np.int64(y))
            j = min(base + y * w_u + x + on * on_stride, trash)
            c = counts[j]
            counts[j] = c + np.uint16(1)
            if c == np.uint16(0xFFFF):
                carry[j] += np.uint32(1)
                wrapped = 2
    return wrapped | (1 if acc < 0 else 0)
