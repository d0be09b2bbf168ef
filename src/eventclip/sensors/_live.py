"""The reconnect loop shared by every live source (Prophesee, iniVation, network streams).

Why one loop: an unplugged camera, a restarted DV runtime and a dropped USB link all need the same
handling — report it on ``on_status``, retry with exponential backoff, resume when the device is
back, and record the outage as a gap chunk instead of papering over it. A backend only says how to
connect, how to read packets until the device is lost, and how to disconnect.

Time after a gap: cameras whose clock restarts when reopened (``rebase_after_gap``) have their
timestamps shifted so the stream's ``t`` stays monotonic: the first event after the outage lands
at (last time seen + outage duration on the host clock). The shift applied is reported in the gap
chunk as ``clock_offset_us``, so raw sensor times can always be recovered.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import ClassVar

from pydantic import Field

from eventclip.events import EventChunk, empty_events
from eventclip.sensors._backoff import Backoff
from eventclip.sensors.base import Source, SourceConfig, StatusCallback
from eventclip.sensors.errors import DeviceLostError, SensorError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (SensorError, RuntimeError, OSError)
"""Errors a reconnection attempt may raise while the device is still away (SDKs raise RuntimeError)."""


class LiveConfig(SourceConfig):
    """Fields every live source shares."""

    reconnect: Backoff = Field(default_factory=Backoff, description="what to do when the device goes away")
    poll_interval_s: float = Field(
        0.001, gt=0, le=0.1, description="sleep between polls when a non-blocking backend has no data (s)"
    )


class LiveSource(Source):
    """A Source backed by a device that can disappear and come back."""

    rebase_after_gap: ClassVar[bool] = True

    def __init__(
        self,
        config: LiveConfig,
        on_status: StatusCallback | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        super().__init__(config, on_status)
        self.config: LiveConfig = config
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._iterating = False
        self._connected = False
        self._clock = clock
        self._sleep = sleep or self._closed.wait
        self._offset_us = 0
        self._last_t_end: int | None = None

    # -- what a backend provides -------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the device; set ``geometry`` and ``sensor_id``. Raise DeviceNotFoundError when absent."""

    @abstractmethod
    def _packets(self) -> Iterator[EventChunk]:
        """Yield chunks (sensor time) until the device is lost (raise DeviceLostError or return) or closed."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the device. Called once per successful ``_connect``, from the iterating thread."""

    # -- the Source interface ----------------------------------------------------------------
    def open(self) -> None:
        """Connect now; a missing camera or wrong serial raises here, before any iteration."""
        self._closed.clear()
        self._connect()
        self._connected = True
        self.on_status("online", f"{self.name} {self.geometry}")

    def close(self) -> None:
        """Stop streaming. Safe from another thread: the iterating thread then releases the device."""
        self._closed.set()
        with self._lock:
            if not self._iterating:
                self._release()

    def _release(self) -> None:
        if self._connected:
            self._connected = False
            self._disconnect()

    def __iter__(self) -> Iterator[EventChunk]:
        if self.geometry is None:
            raise RuntimeError(f"call open() before iterating {self.name}")
        with self._lock:
            self._iterating = True
        try:
            yield from self._run()
        finally:
            with self._lock:
                self._iterating = False
                if self._closed.is_set():
                    self._release()

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> Iterator[EventChunk]:
        gap: dict | None = None
        while not self._closed.is_set():
            reason = "stream ended"
            try:
                for chunk in self._packets():
                    if self._closed.is_set():
                        return
                    if gap is not None:
                        resume = _first_time(chunk)
                        if resume is None:
                            continue
                        yield self._gap_chunk(gap, resume)
                        gap = None
                    yield self._track(chunk)
            except DeviceLostError as exc:
                reason = str(exc)
            if self._closed.is_set():
                return
            lost_at = self._clock()
            self._release()
            self.on_status("offline", f"{self.name}: {reason}")
            if not self.config.reconnect.enabled:
                return
            attempts = self._reconnect(reason)
            if attempts is None:
                return
            gap = {"reason": reason, "lost_at": lost_at, "attempts": attempts, "t_start_us": self._last_t_end}

    def _reconnect(self, reason: str) -> int | None:
        """Retry ``_connect`` with backoff; the attempt count, None when closed meanwhile."""
        attempt = 0
        for attempt, delay in enumerate(self.config.reconnect.delays(), start=1):
            self.on_status("reconnecting", f"{self.name}: {reason}; attempt {attempt} in {delay:.3g} s")
            self._sleep(delay)
            if self._closed.is_set():
                return None
            previous = self.geometry
            try:
                self._connect()
            except TRANSIENT_ERRORS as exc:
                reason = str(exc)
                continue
            self._connected = True
            if previous is not None and self.geometry != previous:
                raise SensorError(
                    f"{self.name}: the camera came back with geometry {self.geometry}, not {previous}; "
                    "a different camera was plugged in — restart the source"
                )
            self.on_status("online", f"{self.name}: reconnected after {attempt} attempt(s)")
            return attempt
        self.on_status("offline", f"{self.name}: gave up after {attempt} attempt(s): {reason}")
        raise DeviceLostError(
            f"{self.name}: still unavailable after {attempt} reconnection attempts ({reason}); "
            "check the device, or raise reconnect.max_attempts"
        )

    def _gap_chunk(self, gap: dict, first_sensor_t: int) -> EventChunk:
        """The gap record, and the clock offset for what follows."""
        offline_s = self._clock() - gap["lost_at"]
        start = gap["t_start_us"]
        if self.rebase_after_gap and start is not None:
            resume = start + max(0, round(offline_s * 1e6))
            self._offset_us = resume - first_sensor_t
        else:
            resume = first_sensor_t + self._offset_us
        meta = {
            "gap": True,
            "reason": "disconnected",
            "detail": gap["reason"],
            "t_start_us": start,
            "t_end_us": resume,
            "offline_s": offline_s,
            "attempts": gap["attempts"],
            "clock_offset_us": self._offset_us,
        }
        assert self.geometry is not None
        return EventChunk(empty_events(), self.geometry, t_end_us=resume, meta=meta)

    def _track(self, chunk: EventChunk) -> EventChunk:
        """Apply the clock offset and remember how far the stream has got."""
        if self._offset_us:
            chunk.events = chunk.events.copy()
            chunk.events["t"] += self._offset_us
            if chunk.t_end_us is not None:
                chunk.t_end_us += self._offset_us
            for key in ("t_start_us", "t_end_us"):
                if chunk.meta.get("gap") and chunk.meta.get(key) is not None:
                    chunk.meta[key] += self._offset_us
            triggers = chunk.meta.get("triggers")
            if triggers is not None and len(triggers):
                chunk.meta["triggers"] = triggers.copy()
                chunk.meta["triggers"]["t"] += self._offset_us
        if chunk.t_end_us is not None:
            self._last_t_end = chunk.t_end_us
        elif len(chunk.events):
            self._last_t_end = int(chunk.events["t"][-1]) + 1
        return chunk

    def _wait(self) -> None:
        """Sleep one poll interval (wakes at once on close)."""
        self._closed.wait(self.config.poll_interval_s)


def _first_time(chunk: EventChunk) -> int | None:
    if len(chunk.events):
        return int(chunk.events["t"][0])
    return chunk.t_end_us
