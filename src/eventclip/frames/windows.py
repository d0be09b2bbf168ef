"""Streaming windows over an event stream that arrives in arbitrary chunks.

Four windowers share one interface, ``push(events, t_end_us=None) -> list[Window]`` and
``flush() -> list[Window]``, and keep their state across chunk boundaries:

- :class:`DurationWindower` (Metavision ``mode="delta_t"``): window k = [t0 + kΔ, t0 + (k+1)Δ)
  in sensor time; t0 is the first event's t floored to a multiple of Δ unless given. Empty windows
  are reported (with no events), never skipped.
- :class:`CountWindower` (``mode="n_events"``): exactly N events per window; the last, partial
  one comes from :meth:`flush`. t_start is its first event's t, t_end its last event's t + 1.
- :class:`MixedWindower` (``mode="mixed"``): a window starts where the previous one ended and
  closes at whichever comes first, Δ µs or N events. Count-closed windows end at their N-th
  event's t + 1 and the next window starts there; events tied with that N-th event's timestamp
  fall into the next window (the one case where an event's t is below its window's t_start).
- :class:`SlidingWindower`: windows of length L every stride S (S <= L), window k =
  [t0 + kS, t0 + kS + L); an event lands in every window that covers it.

A window is closed once the stream is known complete past its end: an event at time t proves it
for every time < t, and ``t_end_us`` (as in :class:`~eventclip.events.EventChunk`) proves it
up to that time. Windows hold views, never per-window copies: a time-grid window (duration,
sliding) keeps the pieces of each chunk it covers (:attr:`Window.parts`), so a 50 ms window of a
camera that delivers 1 ms chunks is 50 views, not a 40 MB join; the frames stage counts the pieces
in place, and :attr:`Window.events` joins them only for callers that want one array. All times are µs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from eventclip.events import EVENT_DTYPE, EventChunk, concat_events, empty_events
from eventclip.frames.accumulate import as_event_array
from eventclip.frames.errors import EventOrderError, WindowConfigError


@dataclass(frozen=True, eq=False)
class Window:
    """One window of events: [t_start, t_end) in µs of sensor time.

    ``parts`` are the window's events as time-ordered, non-empty views into the chunks they arrived
    in (their concatenation is the window); :attr:`events` is that concatenation as one array.
    """

    t_start: int
    t_end: int
    parts: tuple[np.ndarray, ...] = ()

    @classmethod
    def of(cls, t_start: int, t_end: int, events: np.ndarray) -> Window:
        """A window whose events are one array (a view is kept, not a copy)."""
        return cls(t_start, t_end, (events,) if len(events) else ())

    @cached_property
    def events(self) -> np.ndarray:
        """All the window's events as one EVENT_DTYPE array (joined on first use when in several parts)."""
        if len(self.parts) == 1:
            return self.parts[0]
        return concat_events(self.parts) if self.parts else empty_events()

    @property
    def n_events(self) -> int:
        """How many events the window holds."""
        return sum(len(p) for p in self.parts)

    @property
    def duration_us(self) -> int:
        """t_end - t_start, in µs."""
        return self.t_end - self.t_start


def _positive_int(value: object, name: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise WindowConfigError(f"{name} must be a positive integer, got {value!r}; {hint}")
    return int(value)


class _Windower(ABC):
    """Shared chunk handling: validation, time-order checks and the carried-over tail."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._last_t: int | None = None
        self._known_us: int | None = None
        self._t_end_seen: int | None = None
        self._n_seen = 0

    @property
    def _tail(self) -> np.ndarray:
        """The carried-over events, joined once (pushes that close no window only queue their chunk)."""
        if len(self._parts) != 1:
            self._parts = [concat_events(self._parts)]
        return self._parts[0]

    @_tail.setter
    def _tail(self, events: np.ndarray) -> None:
        self._parts = [events] if len(events) else []

    def _append(self, events: np.ndarray, t_end_us: int | None) -> np.ndarray:
        """Validate and queue a chunk, then return every carried event joined."""
        self._accept(events, t_end_us)
        return self._tail

    def _accept(self, events: np.ndarray, t_end_us: int | None) -> None:
        """Validate a chunk's time order and queue it without copying what is already queued.

        Why: cameras deliver ~1 ms chunks; re-joining the open window on every push would copy
        it once per chunk (quadratic in the window's event count).
        """
        events = as_event_array(events)
        if len(events):
            t = events["t"]
            if self._last_t is not None and t[0] < self._last_t:
                raise EventOrderError(
                    f"event {self._n_seen} (t={int(t[0])} µs) is earlier than the previous chunk's last event "
                    f"(t={self._last_t} µs); windows need time-ordered events"
                )
            if self._t_end_seen is not None and t[0] < self._t_end_seen:
                raise EventOrderError(
                    f"event {self._n_seen} (t={int(t[0])} µs) comes after a chunk whose t_end_us={self._t_end_seen} "
                    f"said the stream was complete before that time"
                )
            back = np.flatnonzero(t[1:] < t[:-1])
            if back.size:
                i = int(back[0]) + 1
                raise EventOrderError(
                    f"event {self._n_seen + i} (t={int(t[i])} µs) is earlier than the one before it "
                    f"(t={int(t[i - 1])} µs); windows need time-ordered events (sort by t first)"
                )
            self._last_t = int(t[-1])
            self._known_us = max(self._known_us or self._last_t, self._last_t)
            self._n_seen += len(events)
        if t_end_us is not None:
            if self._last_t is not None and t_end_us <= self._last_t:
                raise EventOrderError(
                    f"t_end_us={t_end_us} says the stream is complete before {t_end_us} µs, but an event has "
                    f"t={self._last_t} µs; t_end_us must be greater than every pushed timestamp"
                )
            self._known_us = int(t_end_us) if self._known_us is None else max(self._known_us, int(t_end_us))
            self._t_end_seen = self._known_us
        if len(events):
            self._parts.append(events)

    @abstractmethod
    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list[Window]:
        """Feed the next chunk (time-ordered, after every earlier chunk); return the windows it closes."""

    @abstractmethod
    def flush(self) -> list[Window]:
        """End of stream: return the windows still open (partial ones included, as Metavision does)."""


class _GridWindower(_Windower):
    """Windows on a time grid: window k = [t0 + k·stride_us, t0 + k·stride_us + window_us)."""

    def __init__(self, window_us: int, stride_us: int, t0_us: int | None) -> None:
        super().__init__()
        self.window_us = window_us
        self.stride_us = stride_us
        self.t0_us = t0_us
        self._k = 0

    def _emit(self, k_stop: int) -> list[Window]:
        """Windows k in [self._k, k_stop) cut from the queued chunks, then drop what no later window needs.

        Each window gets the slices of the chunks it overlaps (views); chunks are never joined. A
        chunk that straddles window edges is searched once for all the edges (one ``searchsorted``
        per chunk and call, since numpy copies the strided ``t`` column to search it).
        """
        assert self.t0_us is not None
        parts = self._parts
        firsts = np.fromiter((int(p["t"][0]) for p in parts), dtype=np.int64, count=len(parts))
        lasts = np.fromiter((int(p["t"][-1]) for p in parts), dtype=np.int64, count=len(parts))
        starts = self.t0_us + np.arange(self._k, k_stop, dtype=np.int64) * self.stride_us
        ends = starts + self.window_us
        part_from = np.searchsorted(lasts, starts, side="left")
        part_to = np.searchsorted(firsts, ends, side="left")
        edges: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        out = []
        for j, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            pieces = []
            for i in range(int(part_from[j]), int(part_to[j])):
                if firsts[i] >= s and lasts[i] < e:
                    pieces.append(parts[i])
                    continue
                if i not in edges:
                    t = np.ascontiguousarray(parts[i]["t"])
                    edges[i] = (np.searchsorted(t, starts, side="left"), np.searchsorted(t, ends, side="left"))
                lo, hi = int(edges[i][0][j]), int(edges[i][1][j])
                if hi > lo:
                    pieces.append(parts[i][lo:hi])
            out.append(Window(s, e, tuple(pieces)))
        self._k = k_stop
        keep_t = self.t0_us + k_stop * self.stride_us
        first = int(np.searchsorted(lasts, keep_t, side="left"))
        kept = parts[first:]
        if kept and firsts[first] < keep_t:
            kept[0] = kept[0][int(np.searchsorted(kept[0]["t"], keep_t, side="left")):]
        self._parts = kept
        return out

    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list[Window]:
        first_new = len(self._parts) == 0
        self._accept(events, t_end_us)
        if not self._parts:
            if self.t0_us is None:
                return []
        else:
            head_t = int(self._parts[0]["t"][0])
            if self.t0_us is None:
                self.t0_us = head_t // self.stride_us * self.stride_us
            if first_new and head_t < self.t0_us:
                raise EventOrderError(
                    f"event at t={head_t} µs is before the first window's start t0_us={self.t0_us}; "
                    f"pass an earlier t0_us or drop those events first"
                )
        if self._known_us is None:
            return []
        k_stop = max(self._k, (self._known_us - self.t0_us - self.window_us) // self.stride_us + 1)
        if k_stop == self._k:
            return []
        return self._emit(k_stop)

    def flush(self) -> list[Window]:
        if self.t0_us is None or self._known_us is None:
            return []
        last = self._last_t if self._last_t is not None else self._known_us - 1
        k_stop = max(self._k, (max(last, self._known_us - 1) - self.t0_us) // self.stride_us + 1)
        out = self._emit(k_stop)
        self._parts = []
        return out


class DurationWindower(_GridWindower):
    """Tumbling windows of ``window_us`` µs aligned to sensor time (Metavision ``delta_t`` mode)."""

    def __init__(self, window_us: int, t0_us: int | None = None) -> None:
        length = _positive_int(window_us, "window_us", "use the window length in µs, e.g. 33000")
        super().__init__(length, length, t0_us)


class SlidingWindower(_GridWindower):
    """Windows ``window_us`` long starting every ``stride_us``; each event lands in every window covering it."""

    def __init__(self, window_us: int, stride_us: int, t0_us: int | None = None) -> None:
        length = _positive_int(window_us, "window_us", "use the window length in µs, e.g. 33000")
        stride = _positive_int(stride_us, "stride_us", "use the step between window starts in µs")
        if stride > length:
            raise WindowConfigError(
                f"stride_us={stride} is larger than window_us={length}, so events between windows would be "
                f"lost; use stride_us <= window_us (equal gives tumbling windows)"
            )
        super().__init__(length, stride, t0_us)


class CountWindower(_Windower):
    """Windows of exactly ``n_events`` events (Metavision ``n_events`` mode); flush() gives the remainder."""

    def __init__(self, n_events: int) -> None:
        super().__init__()
        self.n_events = _positive_int(n_events, "n_events", "use the number of events per window, e.g. 10000")

    def _window(self, ev: np.ndarray) -> Window:
        return Window.of(int(ev["t"][0]), int(ev["t"][-1]) + 1, ev)

    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list[Window]:
        buf = self._append(events, t_end_us)
        n_full = len(buf) // self.n_events
        out = [self._window(buf[i * self.n_events : (i + 1) * self.n_events]) for i in range(n_full)]
        self._tail = buf[n_full * self.n_events :]
        return out

    def flush(self) -> list[Window]:
        out = [self._window(self._tail)] if len(self._tail) else []
        self._tail = np.zeros(0, dtype=EVENT_DTYPE)
        return out


class MixedWindower(_Windower):
    """Windows closing at ``window_us`` µs or ``n_events`` events, whichever comes first (Metavision ``mixed``)."""

    def __init__(self, window_us: int, n_events: int, t0_us: int | None = None) -> None:
        super().__init__()
        self.window_us = _positive_int(window_us, "window_us", "use the window length in µs, e.g. 33000")
        self.n_events = _positive_int(n_events, "n_events", "use the number of events per window, e.g. 10000")
        self._start = t0_us
        self._start_checked = t0_us  # the first window's start, until the first events are checked against it

    def _close(self, buf: np.ndarray, final: bool) -> list[Window]:
        out: list[Window] = []
        pos = 0
        t = buf["t"]
        assert self._start is not None
        while True:
            end = self._start + self.window_us
            stop = pos + int(np.searchsorted(t[pos:], end, side="left"))
            if stop - pos >= self.n_events:
                ev = buf[pos : pos + self.n_events]
                t_end = int(ev["t"][-1]) + 1
                out.append(Window.of(self._start, t_end, ev))
                pos += self.n_events
                self._start = t_end
            elif self._known_us is not None and self._known_us >= end:
                out.append(Window.of(self._start, end, buf[pos:stop]))
                pos = stop
                self._start = end
            else:
                break
        if final and (pos < len(buf) or (self._known_us is not None and self._known_us > self._start)):
            out.append(Window.of(self._start, self._start + self.window_us, buf[pos:]))
            pos = len(buf)
            self._start += self.window_us
        self._tail = buf[pos:]
        return out

    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list[Window]:
        buf = self._append(events, t_end_us)
        if self._start is None:
            if len(buf) == 0:
                return []
            self._start = int(buf["t"][0]) // self.window_us * self.window_us
            if self._start_checked is None:
                self._start_checked = self._start
        if self._start_checked is not None and len(buf) and buf["t"][0] < self._start_checked:
            raise EventOrderError(
                f"event at t={int(buf['t'][0])} µs is before the first window's start t0_us={self._start_checked}; "
                f"pass an earlier t0_us or drop those events first"
            )
        self._start_checked = None
        return self._close(buf, final=False)

    def flush(self) -> list[Window]:
        if self._start is None:
            return []
        return self._close(self._tail, final=True)


Mode = Literal["delta_t", "n_events", "mixed", "sliding"]


def make_windower(
    mode: Mode = "delta_t",
    *,
    window_us: int | None = None,
    n_events: int | None = None,
    stride_us: int | None = None,
    t0_us: int | None = None,
) -> _Windower:
    """Build a windower by Metavision-style mode name (plus ``sliding``: ``window_us`` long every ``stride_us``).

    One length name, ``window_us``, for every mode, as in the CLI and the daemon's config."""
    if mode == "delta_t":
        return DurationWindower(_need(window_us, "window_us", mode), t0_us)
    if mode == "n_events":
        return CountWindower(_need(n_events, "n_events", mode))
    if mode == "mixed":
        return MixedWindower(_need(window_us, "window_us", mode), _need(n_events, "n_events", mode), t0_us)
    if mode == "sliding":
        return SlidingWindower(_need(window_us, "window_us", mode), _need(stride_us, "stride_us", mode), t0_us)
    raise WindowConfigError(f"unknown window mode {mode!r}; use 'delta_t', 'n_events', 'mixed' or 'sliding'")


def _need(value: int | None, name: str, mode: str) -> int:
    if value is None:
        raise WindowConfigError(f"mode={mode!r} needs {name}")
    return value


def iter_windows(chunks: Iterable[EventChunk | np.ndarray], mode: Mode = "delta_t",
                 **kwargs: int | None) -> Iterator[Window]:
    """Windows over a whole stream of chunks (EventChunk or event arrays), flushed at the end."""
    windower = make_windower(mode, **kwargs)
    for chunk in chunks:
        if isinstance(chunk, EventChunk):
            yield from windower.push(chunk.events, chunk.t_end_us)
        else:
            yield from windower.push(chunk)
    yield from windower.flush()
