"""The two queue kinds of the pipeline: a never-blocking event inbox and a dropping window queue.

Why two kinds: the reader must never block (a camera's buffer overflows and loses events if it
does), so its inbox accepts every chunk up to a memory bound counted in events, and refuses (and
the caller counts) only past it. Inference is what may lag, so the window queue is where load is
shed, by a policy, with every drop counted. Downstream of it the pipeline uses ordinary bounded
blocking queues, so back-pressure ends up at the window queue and nowhere else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from eventclip.daemon.config import DropPolicy

END = object()
"""Sentinel that flows through every queue once the stream has ended; never dropped."""


class EventInbox:
    """Unbounded-by-count FIFO of chunks, bounded by the number of events it holds."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.pending_events = 0
        self._items: deque = deque()
        self._cond = threading.Condition()

    def offer(self, item: Any, n_events: int) -> bool:
        """Append without blocking; False when it would exceed ``max_events`` (caller counts the loss)."""
        with self._cond:
            if item is not END and self.pending_events + n_events > self.max_events:
                return False
            self._items.append((item, n_events))
            self.pending_events += n_events
            self._cond.notify()
            return True

    def get(self, timeout: float) -> Any | None:
        """The oldest chunk, or None after ``timeout`` seconds without one."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            item, n = self._items.popleft()
            self.pending_events -= n
            return item

    def __len__(self) -> int:
        return len(self._items)


class WindowQueue:
    """Bounded FIFO of windows that sheds load by policy instead of blocking the producer.

    ``drop_oldest``: when full, the oldest waiting window is evicted (fresh results matter most).
    ``keep_every_nth``: once half full, only every Nth arriving window is admitted (a steady,
    thinned stream); if it is full anyway, the oldest is evicted. Every eviction or refusal is
    counted in :attr:`dropped`.
    """

    def __init__(self, capacity: int, policy: DropPolicy = "drop_oldest", keep_every_n: int = 2) -> None:
        self.capacity = capacity
        self.policy = policy
        self.keep_every_n = keep_every_n
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
                    return
                if len(self._items) >= self.capacity:
                    self._items.popleft()
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
