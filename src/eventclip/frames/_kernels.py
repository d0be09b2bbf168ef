"""Numba kernels behind :mod:`eventclip.frames.accumulate`; the plain-numpy reference lives there.

The kernels read the events' raw bytes: in EVENT_DTYPE each event is 16 bytes and its first
8 bytes hold ``x`` (u2), ``y`` (u2) and ``p`` (i2), so one little-endian 64-bit load gives all
three and the loop touches one word per event. ``u = x | y << 16`` (the word's low half) is all
the loop needs for the pixel, and it is used whole, without unpacking x and y, because on
1280x720 the loop is bound by instructions per event, not by memory:

* pixel index ``y*W + x = u - (u >> 16) * (65536 - W)``: one shift, one multiply, one subtract;
* geometry check, branch-free, both coordinates at once (SWAR on the two 16-bit lanes, valid for
  W, H <= 32768): in a lane holding ``a``, ``(a | 0x8000) - c`` never borrows and has bit 15 set
  exactly when ``(a & 0x7fff) >= c``; OR-ing ``a`` itself adds ``a >= 0x8000``. So the OR over all
  events of ``((u | 0x80008000) - (W | H << 16)) | u`` has bit 15 or bit 31 set iff some event
  lies outside the geometry, which the caller then reports;
* memory safety without a compare: the index is AND-ed with ``span - 1`` (``span`` = the next
  power of two >= H*W) and the counts buffer is padded by ``span - H*W`` slots, so no event,
  however wrong, writes outside the buffer (a wrong one may land in another window's plane; the
  check above then makes the caller raise, so those counts are never returned).

Measured on the 2-core development machine (20 M uniform events into 1280x720, one thread; see
BENCHMARKS.md): this form is ~1.25x the previous "unpack, compare each coordinate, clamp to a
trash slot" loop. Indices are unsigned so numba emits no negative-index wraparound code.
"""

from __future__ import annotations

import numba
import numpy as np

_LOW32 = np.uint64(0xFFFFFFFF)
_U16 = np.uint64(0xFFFF)
_SIGN_BITS = np.uint64(0x80008000)
MAX_SIDE = 32768
"""Largest width or height the SWAR geometry check is exact for (pixels)."""


def span(plane: int) -> int:
    """The power of two >= ``plane`` (= H*W pixels) that the kernels mask pixel indices with."""
    return 1 << max(plane - 1, 0).bit_length()


def padded_size(planes: int, plane: int) -> int:
    """Length of a counts buffer holding ``planes`` planes of ``plane`` pixels plus the mask's padding."""
    return (planes - 1) * plane + span(plane) if planes else 0


@numba.njit(cache=True, nogil=True, inline="always")
def _layout(width: int, height: int, per_polarity: bool) -> tuple:
    """Per-call constants of both kernels: plane (H*W), index mask (:func:`span` - 1), channels,
    ON-plane stride, the index formula's 65536 - W, and the packed limits W | H << 16."""
    plane = np.uint64(width * height)
    mask = np.uint64(1)
    while mask < plane:
        mask <<= np.uint64(1)
    channels = np.uint64(2 if per_polarity else 1)
    on_stride = plane if per_polarity else np.uint64(0)
    return (plane, mask - np.uint64(1), channels, on_stride, np.uint64(65536 - width),
            np.uint64(width | (height << 16)))


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(w: np.uint64, on_stride: np.uint64, d: np.uint64, mask: np.uint64, limits: np.uint64) -> tuple:
    """One event word -> (its slot within its window's planes, the SWAR check bits to OR together)."""
    u = w & _LOW32
    on = np.uint64((((w >> np.uint64(32)) - np.uint64(1)) & _U16) < np.uint64(0x7FFF))
    return on * on_stride + ((u - (u >> np.uint64(16)) * d) & mask), ((u | _SIGN_BITS) - limits) | u


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows(words: np.ndarray, offsets: np.ndarray, width: int, height: int,
                  per_polarity: bool, counts: np.ndarray) -> bool:
    """Add one count per event into ``counts`` (flat uint32 of :func:`padded_size` (B*C, H*W) slots).

    ``words`` is the int64 view of the events (2 words per event; word 0 packs x | y << 16 | p << 32).
    Window b is events ``offsets[b]:offsets[b+1]``; with ``per_polarity`` ON events (p > 0) go
    to the second plane of each window. Returns True when some event lay outside the geometry:
    the counts are then meaningless and the caller raises. Needs W, H <= :data:`MAX_SIDE`.
    """
    plane, mask, channels, on_stride, d, limits = _layout(width, height, per_polarity)
    acc = np.uint64(0)
    one = np.uint32(1)
    for b in range(offsets.shape[0] - 1):
        base = np.uint64(b) * channels * plane
        for i in range(np.uint64(offsets[b]), np.uint64(offsets[b + 1])):
            j, bad = _slot(np.uint64(words[np.uint64(2) * i]), on_stride, d, mask, limits)
            acc |= bad
            counts[base + j] += one
    return (acc & _SIGN_BITS) != np.uint64(0)


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
    plane, mask, channels, on_stride, d, limits = _layout(width, height, per_polarity)
    acc = np.uint64(0)
    wrapped = 0
    for b in range(offsets.shape[0] - 1):
        base = np.uint64(b) * channels * plane
        for i in range(np.uint64(offsets[b]), np.uint64(offsets[b + 1])):
            slot, bad = _slot(np.uint64(words[np.uint64(2) * i]), on_stride, d, mask, limits)
            acc |= bad
            j = base + slot
            c = counts[j]
            counts[j] = c + np.uint16(1)
            if c == np.uint16(0xFFFF):
                carry[j] += np.uint32(1)
                wrapped = 2
    return wrapped | (1 if (acc & _SIGN_BITS) != np.uint64(0) else 0)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_windows_mapped(words: np.ndarray, offsets: np.ndarray, x_lut: np.ndarray, y_lut: np.ndarray,
                         plane: int, per_polarity: bool, counts: np.ndarray) -> bool:
    """Add one count per event at its place on the model's grid (:mod:`eventclip.frames.grid`).

    ``x_lut`` (sensor width + 1 entries) holds each sensor column's grid column, ``y_lut`` (sensor
    height + 1) each row's grid row times the grid's width; a dropped column/row, and the extra last
    entry (where out-of-geometry coordinates are sent), hold ``plane``, so their sum is >= ``plane``
    and the event goes to the trash slot at index ``plane`` of its window. ``counts`` is flat uint32
    (B*C*plane + 1,): window b's planes start at b*C*plane, and every window shares the one trash slot
    at the end (it holds nothing meaningful). Returns True when some event lay outside the sensor.
    Why tables instead of arithmetic: the tables carry whatever mapping :mod:`eventclip.frames.grid`
    defines (dropped rows and columns included), so this kernel does not repeat it. Measured cost
    (BENCHMARKS.md, frame accumulation): 0.71x the full-sensor count at 224 px, 1.05x at 64 px.
    """
    nx = np.uint64(x_lut.shape[0] - 1)
    ny = np.uint64(y_lut.shape[0] - 1)
    p = np.uint64(plane)
    channels = np.uint64(2 if per_polarity else 1)
    on_stride = p if per_polarity else np.uint64(0)
    trash = np.uint64(counts.shape[0] - 1)
    outside = False
    one = np.uint32(1)
    for b in range(offsets.shape[0] - 1):
        base = np.uint64(b) * channels * p
        for i in range(np.uint64(offsets[b]), np.uint64(offsets[b + 1])):
            w = np.uint64(words[np.uint64(2) * i])
            x = w & _U16
            y = (w >> np.uint64(16)) & _U16
            outside |= (x >= nx) | (y >= ny)
            j = np.uint64(x_lut[min(x, nx)]) + np.uint64(y_lut[min(y, ny)])
            on = np.uint64((((w >> np.uint64(32)) - np.uint64(1)) & _U16) < np.uint64(0x7FFF))
            counts[base + on * on_stride + j if j < p else trash] += one
    return outside
