"""Plain-Python reference decoders for EVT 2.0, 2.1 and 3.0, written straight from the specification.

They are slow (one Python step per word) and exist so tests can check the numba kernels in
:mod:`eventclip.io._evt_kernels` against an independent, obviously-correct reading of the spec.
Each returns ``(events, triggers, skipped)``: an EVENT_DTYPE array, a list of (t, id, value)
tuples, and the number of CD events seen before the first TIME_HIGH (no time base). They raise
``ValueError(word_index, message)`` on the first invalid word.
"""

from __future__ import annotations

import numpy as np

from eventclip.events import make_events


class ReferenceDecodeError(ValueError):
    """Raised by the reference decoders; ``word`` is the index of the offending word."""

    def __init__(self, word: int, message: str) -> None:
        super().__init__(f"word {word}: {message}")
        self.word = word


def _unwrap(cur_abs: int, value: int, nbits: int) -> int:
    size = 1 << nbits
    cur = cur_abs % size
    base = cur_abs - cur
    if value < cur and cur - value > size // 2:
        base += size
    return base + value


def _finish(xs, ys, ps, ts, triggers, skipped):
    return make_events(np.array(xs, dtype=np.int64), ys, ps, ts), triggers, skipped


def reference_decode_evt2(words: np.ndarray, width: int, height: int):
    """EVT 2.0: CD word = type(4) | t_low(6) | x(11) | y(11); TIME_HIGH carries t >> 6 (28 bits)."""
    xs, ys, ps, ts, triggers = [], [], [], [], []
    high, seen, last_t, skipped = 0, False, -1, 0
    for i, w in enumerate(int(v) for v in words):
        typ = w >> 28
        if typ in (0, 1):
            if not seen:
                skipped += 1
                continue
            x, y = (w >> 11) & 0x7FF, w & 0x7FF
            t = high * 64 + ((w >> 22) & 0x3F)
            if x >= width or y >= height:
                raise ReferenceDecodeError(i, "event outside geometry")
            if t < last_t:
                raise ReferenceDecodeError(i, "time goes backwards")
            last_t = t
            xs.append(x), ys.append(y), ps.append(typ), ts.append(t)
        elif typ == 8:
            high = _unwrap(high, w & 0x0FFFFFFF, 28)
            seen = True
        elif typ == 0xA:
            if seen:
                triggers.append((high * 64 + ((w >> 22) & 0x3F), (w >> 8) & 0x1F, w & 1))
        elif typ in (0xE, 0xF):
            continue
        else:
            raise ReferenceDecodeError(i, f"reserved word type {typ:#x}")
    return _finish(xs, ys, ps, ts, triggers, skipped)


def reference_decode_evt21(words: np.ndarray, width: int, height: int):
    """EVT 2.1 (64-bit words as uint64): like EVT 2.0 with x aligned to 32 and a 32-bit valid mask."""
    xs, ys, ps, ts, triggers = [], [], [], [], []
    high, seen, last_t, skipped = 0, False, -1, 0
    for i, w in enumerate(int(v) for v in words):
        hi, mask = w >> 32, w & 0xFFFFFFFF
        typ = hi >> 28
        if typ in (0, 1):
            if not seen:
                skipped += 1
                continue
            x0, y = (hi >> 11) & 0x7FF, hi & 0x7FF
            t = high * 64 + ((hi >> 22) & 0x3F)
            if mask and t < last_t:
                raise ReferenceDecodeError(i, "time goes backwards")
            if mask:
                last_t = t
            for b in range(32):
                if mask >> b & 1:
                    if x0 + b >= width or y >= height:
                        raise ReferenceDecodeError(i, "event outside geometry")
                    xs.append(x0 + b), ys.append(y), ps.append(typ), ts.append(t)
        elif typ == 8:
            high = _unwrap(high, hi & 0x0FFFFFFF, 28)
            seen = True
        elif typ == 0xA:
            if seen:
                triggers.append((high * 64 + ((hi >> 22) & 0x3F), (hi >> 8) & 0x1F, hi & 1))
        elif typ in (0xE, 0xF):
            continue
        else:
            raise ReferenceDecodeError(i, f"reserved word type {typ:#x}")
    return _finish(xs, ys, ps, ts, triggers, skipped)


def reference_decode_evt3(words: np.ndarray, width: int, height: int):
    """EVT 3.0 (16-bit words): stateful row, vector base and 24-bit time (12 high + 12 low, high wraps)."""
    xs, ys, ps, ts, triggers = [], [], [], [], []
    high, low, seen, last_t, skipped = 0, 0, False, -1, 0
    y = base_x = pol = 0

    def emit(i: int, x: int, p: int) -> None:
        nonlocal last_t
        t = high * 4096 + low
        if x >= width or y >= height:
            raise ReferenceDecodeError(i, "event outside geometry")
        if t < last_t:
            raise ReferenceDecodeError(i, "time goes backwards")
        last_t = t
        xs.append(x), ys.append(y), ps.append(p), ts.append(t)

    for i, w in enumerate(int(v) for v in words):
        typ, payload = w >> 12, w & 0xFFF
        if typ == 0x0:
            y = payload & 0x7FF
        elif typ == 0x2:
            if seen:
                emit(i, payload & 0x7FF, payload >> 11)
            else:
                skipped += 1
        elif typ == 0x3:
            base_x, pol = payload & 0x7FF, payload >> 11
        elif typ in (0x4, 0x5):
            nbits = 12 if typ == 0x4 else 8
            for b in range(nbits):
                if payload >> b & 1:
                    if seen:
                        emit(i, base_x + b, pol)
                    else:
                        skipped += 1
            base_x += nbits
        elif typ == 0x6:
            low = payload
        elif typ == 0x8:
            high = _unwrap(high, payload, 12)
            seen = True
        elif typ == 0xA:
            if seen:
                triggers.append((high * 4096 + low, (payload >> 8) & 0xF, payload & 1))
        elif typ in (0x7, 0xE, 0xF):
            continue
        else:
            raise ReferenceDecodeError(i, f"reserved word type {typ:#x}")
    return _finish(xs, ys, ps, ts, triggers, skipped)
