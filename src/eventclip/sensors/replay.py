"""Replay a recorded file as if it were a live camera.

Why: the daemon, the benchmarks and the tests need the same code path for a file and a camera
(as the Metavision samples' ``-i file | -s serial``). A replay source reads any file
:func:`eventclip.io.open_events` reads, cuts it into short time slices (``chunk_us``, default
1 ms, so downstream latency stays low) and releases each slice when the host's monotonic clock
says its end time has passed, scaled by ``speed``.

Pacing is scheduled against the absolute start of the pass, never by sleeping a fixed amount
after each chunk, so time spent downstream does not accumulate into drift over long replays.
Looping shifts event times forward by one pass length per loop, so ``t`` stays monotonic, and
every loop boundary is reported as a gap chunk (``meta["gap"]``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from eventclip.errors import ConfigError
from eventclip.events import EventChunk, Geometry, concat_events, empty_events
from eventclip.io import open_events
from eventclip.sensors.base import SENSORS, Source, SourceConfig, StatusCallback

ClockFn = Callable[[], float]
"""Monotonic host clock in seconds (``time.monotonic`` by default)."""
SleepFn = Callable[[float], None]
"""Sleeps for a number of seconds; the default wakes early when the source is closed."""


class ReplayConfig(SourceConfig):
    """Config of a file replay. Times are µs of the file's own sensor clock."""

    kind: Literal["replay"] = "replay"
    path: Path
    format: str | None = Field(None, description="file format name; None detects it from the content")
    width: int | None = Field(None, gt=0, description="sensor width in pixels when the file does not say")
    height: int | None = Field(None, gt=0, description="sensor height in pixels when the file does not say")
    realtime: bool = Field(True, description="pace at recorded speed x speed; False: as fast as possible")
    speed: float = Field(1.0, gt=0, description="playback speed factor when realtime (2.0 = twice as fast)")
    loop: bool = Field(False, description="start again at the end; each boundary is reported as a gap")
    start_offset_us: int | None = Field(
        None, ge=0, description="start this long after the recording's first event (µs)"
    )
    stop_offset_us: int | None = Field(
        None, gt=0, description="end each pass this long after the recording's first event (µs, exclusive)"
    )
    chunk_us: int = Field(1000, ge=10, le=1_000_000, description="time span of each chunk (µs)")

    @model_validator(mode="after")
    def _check(self) -> ReplayConfig:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height (pixels), or neither")
        start, stop = self.start_offset_us, self.stop_offset_us
        if start is not None and stop is not None and stop <= start:
            raise ValueError(f"stop_offset_us ({stop}) must be after start_offset_us ({start})")
        return self


def slice_by_time(
    blocks: Iterator[np.ndarray], origin_us: int | None, chunk_us: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Re-cut event blocks into consecutive windows ``[t0, t0 + chunk_us)`` aligned on ``origin_us``.

    Yields ``(t_start_us, t_end_us, events)`` for every window up to the last event, empty ones
    included, so that the consumer sees time advance through silence. ``origin_us`` None aligns
    windows on the first event. An event older than the current window (out of order in the file)
    is kept, in the current window, never dropped.
    """
    pending: list[np.ndarray] = []
    current: int | None = None
    for block in blocks:
        if len(block) == 0:
            continue
        if origin_us is None:
            origin_us = int(block["t"][0])
        idx = (block["t"] - origin_us) // chunk_us
        if current is not None:
            idx = np.maximum(idx, current)
        idx = np.maximum.accumulate(idx)
        if current is None:
            current = int(idx[0])
        cuts = np.flatnonzero(np.diff(idx)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(block)]))
        for s, e in zip(starts, ends, strict=True):
            w = int(idx[s])
            if w != current:
                yield _window(origin_us, chunk_us, current, pending)
                pending = []
                for empty in range(current + 1, w):
                    yield _window(origin_us, chunk_us, empty, [])
                current = w
            pending.append(block[s:e])
    if current is not None:
        yield _window(origin_us, chunk_us, current, pending)


def _window(origin_us: int, chunk_us: int, index: int, parts: list[np.ndarray]) -> tuple[int, int, np.ndarray]:
    t0 = origin_us + index * chunk_us
    events = concat_events(parts)
    return t0, t0 + chunk_us, events


@SENSORS.register(config=ReplayConfig, capabilities={"live": False})
class ReplaySource(Source):
    """A recorded file played back at recorded speed (or as fast as possible), optionally looped."""

    kind = "replay"
    Config = ReplayConfig

    def __init__(
        self,
        config: ReplayConfig,
        on_status: StatusCallback | None = None,
        *,
        clock: ClockFn = time.monotonic,
        sleep: SleepFn | None = None,
    ) -> None:
        super().__init__(config, on_status)
        self.config: ReplayConfig = config
        self.paced = config.realtime
        self._closed = threading.Event()
        self._clock = clock
        self._sleep = sleep or self._closed.wait
        self._geometry_override = Geometry(config.width, config.height) if config.width else None
        self.clock = "sensor"
        self._start_us: int | None = None
        self._stop_us: int | None = None

    def open(self) -> None:
        """Check the file opens and learn its geometry; reading starts when iterated."""
        if not self.config.path.is_file():
            raise ConfigError(f"replay: path {str(self.config.path)!r} is not a file; give an existing event file")
        stream = self._open_stream()
        try:
            self.geometry = stream.geometry
            first = next((int(c.events["t"][0]) for c in stream if len(c.events)), None)
        finally:
            _close(stream)
        cfg = self.config
        if first is not None:
            self._start_us = first + (cfg.start_offset_us or 0)
            self._stop_us = None if cfg.stop_offset_us is None else first + cfg.stop_offset_us
        self.sensor_id = self.config.path.name
        self._closed.clear()
        self.on_status("online", f"replaying {self.config.path}")

    def _open_stream(self):
        return open_events(self.config.path, format=self.config.format, geometry=self._geometry_override)

    def _blocks(self) -> Iterator[np.ndarray]:
        """The file's events between the start and stop offsets, as read."""
        start, stop = self._start_us, self._stop_us
        stream = self._open_stream()
        try:
            for chunk in stream:
                ev = chunk.events
                if start is not None and len(ev) and ev["t"][0] < start:
                    ev = ev[ev["t"] >= start]
                if stop is not None and len(ev) and ev["t"][-1] >= stop:
                    yield ev[ev["t"] < stop]
                    return
                yield ev
        finally:
            _close(stream)

    def __iter__(self) -> Iterator[EventChunk]:
        if self.geometry is None:
            raise RuntimeError("call open() before iterating a replay source")
        cfg = self.config
        host_start: float | None = None  # set at the first slice, so opening the file is not counted as lateness
        shift = 0
        first_sensor = self._start_us
        loop_index = 0
        while not self._closed.is_set():
            last_end: int | None = None
            for _t0, t1, events in slice_by_time(self._blocks(), self._start_us, cfg.chunk_us):
                if self._stop_us is not None:
                    t1 = min(t1, self._stop_us)
                if host_start is None:
                    host_start = self._clock()
                if cfg.realtime:
                    due = host_start + (t1 + shift - first_sensor) / cfg.speed / 1e6
                    wait = due - self._clock()
                    if wait > 0:
                        self._sleep(wait)
                if self._closed.is_set():
                    return
                if shift:
                    events = events.copy()
                    events["t"] += shift
                last_end = t1
                yield EventChunk(events, self.geometry, t_end_us=t1 + shift, meta={"loop": loop_index})
            if not cfg.loop or last_end is None or first_sensor is None:
                break
            pass_end = last_end if self._stop_us is None else self._stop_us
            gap_at = pass_end + shift
            shift += pass_end - first_sensor
            loop_index += 1
            yield EventChunk(
                empty_events(),
                self.geometry,
                t_end_us=gap_at,
                meta={"gap": True, "reason": "loop", "loop": loop_index, "t_start_us": gap_at, "t_end_us": gap_at},
            )
        self.on_status("offline", "end of recording")

    def close(self) -> None:
        """Stop the replay; wakes a pacing sleep at once. Safe to call twice and from another thread."""
        self._closed.set()


def _close(stream: object) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
