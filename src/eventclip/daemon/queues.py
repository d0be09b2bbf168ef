"""The two queue kinds of the pipeline: the reader's event inbox and a dropping window queue.

Why two kinds: a live source must never block (a camera's buffer overflows and loses events if it
does), so its inbox accepts every chunk and, past a memory bound counted in events, drops the
*oldest* queued chunks to make room (fresh data matters most; old data would be stale by the time
windowing reached it). What was dropped is replaced in the queue by a :class:`Hole`, so windowing
knows which windows lost events, and the count goes to the caller. An unpaced replay (a batch job)
waits for room instead. Inference is what may lag, so the window queue is where load is shed, by a
policy, with every drop counted. Downstream of it the pipeline uses ordinary bounded blocking
queues, so back-pressure ends up at the window queue and nowhere else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventclip.daemon.config import DropPolicy
from eventclip.events import EventChunk

END = object()
"""Sentinel that flows through every queue once the stream has ended; never dropped."""


@dataclass
class Hole:
    """Chunks dropped from the inbox, in their place in the stream: the time span of their events (µs;
    None when all were empty), how far they proved the stream complete (``t_end_us``) and how many
    events they held. Windows overlapping ``[t_first_us, t_last_us]`` lack events."""

    t_first_us: int | None = None
    t_last_us: int | None = None
    t_end_us: int | None = None
    n_events: int = 0

    def absorb(self, chunk: EventChunk) -> None:
        """Add a dropped chunk (later in time than what the hole holds)."""
        ev = chunk.events
        if len(ev):
            if self.t_first_us is None:
                self.t_first_us = int(ev["t"][0])
            self.t_last_us = int(ev["t"][-1])
            self.n_events += len(ev)
        if chunk.t_end_us is not None:
            self.t_end_us = int(chunk.t_end_us)

    def merge(self, later: Hole) -> None:
        """Extend this hole by one that follows it."""
        if later.t_first_us is not None:
            if self.t_first_us is None:
                self.t_first_us = later.t_first_us
            self.t_last_us = later.t_last_us
        if later.t_end_us is not None:
            self.t_end_us = later.t_end_us
        self.n_events += later.n_events


class EventInbox:
    """FIFO of ``(chunk, handed_over_at)`` from the reader, bounded by the events it holds (``max_events``)."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.pending_events = 0
        self._items: deque = deque()
        self._cond = threading.Condition()

    def offer(self, chunk: EventChunk, handed_at: float) -> int:
        """Queue without blocking; first drop the oldest queued chunks (into a :class:`Hole` at the head)
        until this one fits, or this one too when it alone exceeds the bound. Returns the events dropped."""
        n = len(chunk.events)
        with self._cond:
            dropped = 0
            if self.pending_events + n > self.max_events:
                hole = Hole()
                while self._items and self.pending_events + n > self.max_events:
                    item, k = self._items.popleft()
                    self.pending_events -= k
                    dropped += k
                    if isinstance(item, Hole):
                        hole.merge(item)
                    else:
                        hole.absorb(item[0])
                if n > self.max_events:
                    hole.absorb(chunk)
                    dropped += n
                self._items.appendleft((hole, 0))
                if n > self.max_events:
                    self._cond.notify()
                    return dropped
            self._items.append(((chunk, handed_at), n))
            self.pending_events += n
            self._cond.notify()
            return dropped

    def put(self, chunk: EventChunk, handed_at: float, timeout: float) -> bool:
        """Queue, waiting up to ``timeout`` s for room (a chunk larger than the bound waits for an empty
        inbox); False when there was none. For sources that can wait (an unpaced replay)."""
        n = len(chunk.events)
        with self._cond:
            room = self._cond.wait_for(lambda: self.pending_events + n <= self.max_events or not self._items, timeout)
            if not room:
                return False
            self._items.append(((chunk, handed_at), n))
            self.pending_events += n
            self._cond.notify_all()
            return True

    def end(self) -> None:
        """Queue the END marker (after everything already queued)."""
        with self._cond:
            self._items.append((END, 0))
            self._cond.notify_all()

    def get(self, timeout: float) -> Any | None:
        """The oldest item (``(chunk, handed_at)``, a :class:`Hole` or END), or None after ``timeout`` s."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            item, n = self._items.popleft()
            self.pending_events -= n
            self._cond.notify_all()  # a waiting put may now fit
            return item

    def take_all(self) -> list:
        """Every queued item, oldest first, leaving the inbox empty (for a consumer catching up)."""
        with self._cond:
            items = [item for item, _ in self._items]
            self._items.clear()
            self.pending_events = 0
            self._cond.notify_all()
            return items

    def __len__(self) -> int:
        return len(self._items)


class WindowQueue:
    """Bounded FIFO of windows that sheds load by policy instead of blocking the producer.

    ``drop_oldest``: when full, the oldest waiting window is evicted (fresh results matter most).
    ``keep_every_nth``: once half full, only every Nth arriving window is admitted (a steady,
    thinned stream); if it is full anyway, the oldest is evicted. Every eviction or refusal is
    counted in :attr:`dropped`.
    """

    def __init__(self, capacity: int, policy: DropPolicy = "drop_oldest", keep_every_n: int = 2,
                 on_drop: Callable[[Any], None] | None = None) -> None:
        """``on_drop(item)`` is called (in the putting thread) for every window dropped, to count its events."""
        self.capacity = capacity
        self.policy = policy
        self.keep_every_n = keep_every_n
        self.on_drop = on_drop or (lambda item: None)
        self.dropped = 0
        self._arrivals = 0
        self._items: deque = deque()
        self._cond = threading.Condition()

    def put(self, item: Any) -> None:
        """Add a window (never blocks); may drop one by policy. END is always admitted."""
        with self._cond:
            if item is not END:
                self._arrivals += 1
                lagging = len(self._items) * 2 >= self.capacity
                if self.policy == "keep_every_nth" and lagging and self._arrivals % self.keep_every_n != 0:
                    self.dropped += 1
                    self.on_drop(item)
                    return
                if len(self._items) >= self.capacity:
                    self.on_drop(self._items.popleft())
                    self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get_batch(self, max_items: int, timeout: float) -> list:
        """Up to ``max_items`` waiting windows (waits only for the first); [] after ``timeout`` s.

        END is returned alone, after every window queued before it.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    if not self._items:
                        return []
            out = []
            while self._items and len(out) < max_items:
                if self._items[0] is END:
                    if not out:
                        out.append(self._items.popleft())
                    break
                out.append(self._items.popleft())
            return out

    def __len__(self) -> int:
        """Windows waiting (the END marker is not a window)."""
        items = self._items
        return len(items) - (1 if items and items[-1] is END else 0)
