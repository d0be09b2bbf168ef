"""Copy and validate one block of HDF5 ``/CD/events`` into EVENT_DTYPE in one pass, or validate a
block that HDF5 already read straight into EVENT_DTYPE (Metavision's own layout).

The numba kernels and the plain-numpy reference return the same (error code, event index); tests
compare them. Checks: x < width, y < height, p in {0, 1}, t non-decreasing (also against the
previous block's last time).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
ERR_OUTSIDE_GEOMETRY = 1
ERR_BAD_POLARITY = 2
ERR_TIME_BACKWARDS = 3


@njit(nogil=True, cache=True)
def convert_block(x, y, p, t, out, width, height, last_t):
    """Write x | y << 16 | p << 32 and t into ``out`` (int64 [n, 2]); returns (code, index)."""
    for i in range(x.shape[0]):
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        pi = np.int64(p[i])
        ti = np.int64(t[i])
        if xi >= width or yi >= height:
            return ERR_OUTSIDE_GEOMETRY, i
        if pi != 0 and pi != 1:
            return ERR_BAD_POLARITY, i
        if ti < last_t:
            return ERR_TIME_BACKWARDS, i
        out[i, 0] = xi | (yi << 16) | (pi << 32)
        out[i, 1] = ti
        last_t = ti
    return OK, 0


_FIELDS = np.int64(0xFFFFFFFFFFFF)


@njit(nogil=True, cache=True)
def check_block(out, width, height, last_t):
    """Validate EVENT_DTYPE events seen as int64 [n, 2] in place; returns (code, index) like ``convert_block``.

    Also zeroes the two pad bytes after ``p``: HDF5 writes only the fields into memory, so the pad
    would otherwise keep whatever the buffer held.
    """
    for i in range(out.shape[0]):
        w = out[i, 0] & _FIELDS
        out[i, 0] = w
        pi = (w >> 32) & 0xFFFF
        ti = out[i, 1]
        if (w & 0xFFFF) >= width or ((w >> 16) & 0xFFFF) >= height:
            return ERR_OUTSIDE_GEOMETRY, i
        if pi != 0 and pi != 1:
            return ERR_BAD_POLARITY, i
        if ti < last_t:
            return ERR_TIME_BACKWARDS, i
        last_t = ti
    return OK, 0


def reference_convert_block(x, y, p, t, width: int, height: int, last_t: int):
    """Numpy version: ((code, index), events) with events None on error."""
    from eventclip.events import make_events

    x, y, p, t = (np.asarray(a).astype(np.int64) for a in (x, y, p, t))
    prev = np.concatenate([[last_t], t[:-1]])
    checks = [(ERR_OUTSIDE_GEOMETRY, (x >= width) | (y >= height)), (ERR_BAD_POLARITY, (p != 0) & (p != 1)),
              (ERR_TIME_BACKWARDS, t < prev)]
    first = None
    for code, mask in checks:
        if mask.any():
            i = int(np.argmax(mask))
            if first is None or i < first[1]:
                first = (code, i)
    if first is not None:
        return first, None
    return (OK, 0), make_events(x, y, p, t)
