"""Decode Prophesee DAT CD records: a numba kernel and the plain-numpy reference it must match.

A record is two little-endian uint32: ``t`` (µs, wraps at 2^32) and ``data`` = x (bits 0-13) |
y (bits 14-27) | p (bits 28-31, 0 or 1). A drop of ``t`` by more than 2^31 is a wrap (+2^32 µs);
any smaller drop is time going backwards, which DAT CD streams never do.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
ERR_OUTSIDE_GEOMETRY = 1
ERR_TIME_BACKWARDS = 2
ERR_BAD_POLARITY = 3

WRAP = np.int64(1) << 32
HALF = np.int64(1) << 31


@njit(nogil=True, cache=True, inline="always")
def _unwrap(t, last, base):
    """(ok, wrap base) for a record's 32-bit time ``t`` after ``last`` (-1: none yet): a drop of more than
    2^31 µs is a wrap (the base moves on 2^32 µs); any smaller drop is time going back (not ok)."""
    if last >= 0 and t < last:
        if last - t > HALF:
            return True, base + WRAP
        return False, base
    return True, base


@njit(nogil=True, cache=True)
def decode_dat(words, out, state, width, height):
    """``words``: uint32 [n, 2]; ``out``: int64 [n, 2] view of EVENT_DTYPE; ``state``: [wrap_base, last_raw_t].

    Returns (n_decoded, err_code, err_record). ``last_raw_t`` is -1 before the first record.
    """
    base = state[0]
    last = state[1]
    n = words.shape[0]
    for i in range(n):
        t = np.int64(words[i, 0])
        d = np.int64(words[i, 1])
        ok, base = _unwrap(t, last, base)
        if not ok:
            state[0] = base
            state[1] = last
            return i, ERR_TIME_BACKWARDS, i
        x = d & 0x3FFF
        y = (d >> 14) & 0x3FFF
        p = (d >> 28) & 0xF
        if p > 1:
            return i, ERR_BAD_POLARITY, i
        if x >= width or y >= height:
            return i, ERR_OUTSIDE_GEOMETRY, i
        out[i, 0] = x | (y << 16) | (p << 32)
        out[i, 1] = base + t
        last = t
    state[0] = base
    state[1] = last
    return n, OK, 0


@njit(nogil=True, cache=True)
def scan_dat(words, state):
    """Largest x and y over the DAT records (uint32 [n, 2]) before the first one :func:`decode_dat` would
    refuse for its time or polarity, for files whose header has no geometry.

    ``state`` is [wrap_base, last_raw_t] as in :func:`decode_dat`, carried from block to block.
    Returns (max x, max y, records accepted, err_code): -1 maxima when none was accepted. Why stop
    there: records after a bad one are not events (appended garbage, a damaged tail), and their
    coordinates would size the sensor up to 16384x16384.
    """
    mx = np.int64(-1)
    my = np.int64(-1)
    base = state[0]
    last = state[1]
    for i in range(words.shape[0]):
        t = np.int64(words[i, 0])
        d = np.int64(words[i, 1])
        ok, base = _unwrap(t, last, base)
        if not ok:
            state[0] = base
            state[1] = last
            return mx, my, i, ERR_TIME_BACKWARDS
        if (d >> 28) & 0xF > 1:
            state[0] = base
            state[1] = last
            return mx, my, i, ERR_BAD_POLARITY
        mx = max(mx, d & 0x3FFF)
        my = max(my, (d >> 14) & 0x3FFF)
        last = t
    state[0] = base
    state[1] = last
    return mx, my, words.shape[0], OK


def reference_decode_dat(words: np.ndarray, width: int, height: int):
    """Plain-numpy version of :func:`decode_dat` for one whole array: (x, y, p, t) or (err_code, record)."""
    t_raw = words[:, 0].astype(np.int64)
    d = words[:, 1].astype(np.int64)
    x, y, p = d & 0x3FFF, (d >> 14) & 0x3FFF, (d >> 28) & 0xF
    drops = np.diff(t_raw) < 0
    big = np.diff(t_raw) < -HALF
    wraps = np.concatenate([[0], np.cumsum(big)]) * WRAP
    checks = [
        (ERR_TIME_BACKWARDS, np.concatenate([[False], drops & ~big])),
        (ERR_BAD_POLARITY, p > 1),
        (ERR_OUTSIDE_GEOMETRY, (x >= width) | (y >= height)),
    ]
    first_code, first_at = None, len(words)
    for code, mask in checks:
        if mask.any() and int(np.argmax(mask)) < first_at:
            first_code, first_at = code, int(np.argmax(mask))
    if first_code is not None:
        return first_code, first_at
    return x, y, p, t_raw + wraps


def reference_scan_dat(words: np.ndarray) -> tuple[int, int, int, int]:
    """Plain-numpy version of :func:`scan_dat` over one whole array: (max x, max y, records accepted, err_code)."""
    got = reference_decode_dat(words, 1 << 14, 1 << 14)  # no record lies outside: coordinates are 14 bits
    if len(got) == 2:
        err, n = got
        d = words[:n, 1].astype(np.int64)
        x, y = d & 0x3FFF, (d >> 14) & 0x3FFF
    else:
        err, n = OK, len(words)
        x, y = got[0], got[1]
    return (int(x.max()) if n else -1), (int(y.max()) if n else -1), int(n), int(err)
