"""Re-slice a reader's decoded blocks into chunks by event count or by time span, in bounded memory.

Readers yield blocks of whatever size suits their decoder. Callers want either fixed-size chunks
(``n_events``) or fixed time spans (``delta_t_us``). Time spans are half-open
``[t0 + k·Δ, t0 + (k+1)·Δ)`` with ``t0 = floor(t_first / Δ) · Δ`` (aligned to a multiple of Δ, like
Metavision's ``EventsIterator``), every span in between is yielded, empty ones included, so that
windows stay regular; each time chunk carries ``t_end_us`` = the end of its span.
Memory is bounded by one reader block plus one output chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from eventclip.events import EVENT_DTYPE, EventChunk, Geometry


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=EVENT_DTYPE)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)


def chunk_blocks(blocks: Iterable[np.ndarray], geometry: Geometry, meta: dict | None = None) -> Iterator[EventChunk]:
    """Pass the reader's blocks through as chunks, skipping empty blocks."""
    for block in blocks:
        if len(block):
            yield EventChunk(block, geometry, None, dict(meta or {}))


def chunk_by_count(
    blocks: Iterable[np.ndarray], geometry: Geometry, n_events: int, meta: dict | None = None
) -> Iterator[EventChunk]:
    """Chunks of exactly ``n_events`` events; the last one holds the remainder (never empty)."""
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, got {n_events}")
    pending: list[np.ndarray] = []
    n_pending = 0
    try:
        for block in blocks:
            while len(block):
                take = min(n_events - n_pending, len(block))
                pending.append(block[:take])
                n_pending += take
                block = block[take:]
                if n_pending == n_events:
                    yield EventChunk(_concat(pending), geometry, None, dict(meta or {}))
                    pending, n_pending = [], 0
    except Exception:
        if n_pending:  # the reader's valid events before its error, as a short chunk marked incomplete
            yield EventChunk(_concat(pending), geometry, None, dict(meta or {}, incomplete=True))
        raise
    if n_pending:
        yield EventChunk(_concat(pending), geometry, None, dict(meta or {}))


def chunk_by_time(
    blocks: Iterable[np.ndarray], geometry: Geometry, delta_t_us: int, meta: dict | None = None
) -> Iterator[EventChunk]:
    """Chunks covering consecutive half-open spans of ``delta_t_us`` µs (see module docstring).

    Blocks must be time-ordered (non-decreasing ``t``); an event earlier than the current span
    raises ValueError rather than being misplaced.
    """
    if delta_t_us <= 0:
        raise ValueError(f"delta_t_us must be positive, got {delta_t_us}")
    pending: list[np.ndarray] = []
    span_start: int | None = None
    try:
        for block in blocks:
            if not len(block):
                continue
            if span_start is None:
                span_start = int(block["t"][0]) // delta_t_us * delta_t_us
            if int(block["t"][0]) < span_start:
                raise ValueError(
                    f"events are not time-ordered: t={int(block['t'][0])} µs after span start {span_start} µs")
            while len(block):
                span_end = span_start + delta_t_us
                cut = int(np.searchsorted(block["t"], span_end, side="left"))
                if cut == len(block):
                    pending.append(block)
                    break
                pending.append(block[:cut])
                block = block[cut:]
                yield EventChunk(_concat(pending), geometry, span_end, dict(meta or {}, t_start_us=span_start))
                pending = []
                span_start = span_end
    except Exception:
        if span_start is not None and any(len(p) for p in pending):  # valid events before the error: the span
            yield EventChunk(_concat(pending), geometry, span_start + delta_t_us,  # so far, marked incomplete
                             dict(meta or {}, t_start_us=span_start, incomplete=True))
        raise
    if span_start is not None and any(len(p) for p in pending):
        yield EventChunk(_concat(pending), geometry, span_start + delta_t_us, dict(meta or {}, t_start_us=span_start))
