"""The reconnect loop every live source shares, driven by a camera that fails and recovers on schedule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import pytest

from eventclip.events import EventChunk, Geometry, make_events
from eventclip.sensors._backoff import Backoff
from eventclip.sensors._live import LiveConfig, LiveSource
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError


class ScheduleConfig(LiveConfig):
    kind: Literal["schedule"] = "schedule"


class ScheduledCamera(LiveSource):
    """Test double: ``sessions`` lists, per connection, the event times it delivers before being lost;
    ``failures`` lists how many connection attempts fail before each reconnection succeeds."""

    kind = "schedule"
    Config = ScheduleConfig

    def __init__(self, sessions: list[list[int]], failures: list[int], **cfg) -> None:
        self.fake_now = 0.0
        self.sleeps: list[float] = []
        super().__init__(ScheduleConfig(**cfg), self.record, clock=lambda: self.fake_now, sleep=self.fake_sleep)
        self.sessions = list(sessions)
        self.failures = list(failures)
        self.statuses: list[tuple[str, str]] = []
        self.connects = self.disconnects = 0

    def record(self, state: str, detail: str) -> None:
        self.statuses.append((state, detail))

    def fake_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake_now += seconds

    def _connect(self) -> None:
        if self.connects and self.failures and self.failures[0] > 0:
            self.failures[0] -= 1
            raise DeviceNotFoundError("schedule", "S1", [])
        if self.connects and self.failures:
            self.failures.pop(0)
        if not self.sessions:
            raise DeviceNotFoundError("schedule", "S1", [])
        self.connects += 1
        self.geometry = Geometry(10, 10)
        self.sensor_id = "S1"

    def _packets(self) -> Iterator[EventChunk]:
        times = self.sessions.pop(0)
        for t in times:
            self.fake_now += 0.001
            yield EventChunk(make_events([1], [2], [1], [t]), self.geometry)
        raise DeviceLostError("unplugged")

    def _disconnect(self) -> None:
        self.disconnects += 1


def test_backoff_delays_grow_and_cap() -> None:
    b = Backoff(initial_s=0.1, factor=2.0, max_s=0.5, max_attempts=5)
    assert list(b.delays()) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_backoff_rejects_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="max_s"):
        Backoff(initial_s=2.0, max_s=1.0)


def test_fails_and_recovers_on_schedule_with_a_gap_and_rebased_clock() -> None:
    # session 1: sensor µs 100..300; 3 failed attempts; session 2: the sensor counter restarted at 0.
    cam = ScheduledCamera([[100, 200, 300], [0, 50]], failures=[3], reconnect={"initial_s": 0.1, "max_attempts": 6})
    cam.open()
    out = []
    with pytest.raises(DeviceLostError, match="still unavailable after 6"):
        for chunk in cam:
            out.append(chunk)
    assert cam.sleeps[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    gaps = [c for c in out if c.meta.get("gap")]
    assert len(gaps) == 1  # the second loss never recovers: no resume, so no gap chunk for it
    gap = gaps[0].meta
    assert gap["t_start_us"] == 301
    assert gap["attempts"] == 4
    offline_us = round(gap["offline_s"] * 1e6)
    assert offline_us == pytest.approx(1_500_000 + 1000, abs=2)  # the sleeps plus one packet of fake time
    assert gap["t_end_us"] == 301 + offline_us
    data_t = [int(c.events["t"][0]) for c in out if not c.meta.get("gap")]
    assert data_t == [100, 200, 300, 301 + offline_us, 301 + offline_us + 50]
    assert gap["clock_offset_us"] == 301 + offline_us
    states = [s for s, _ in cam.statuses]
    assert states[:6] == ["online", "offline", "reconnecting", "reconnecting", "reconnecting", "reconnecting"]
    assert states[6] == "online" and states[-1] == "offline"
    assert cam.connects == 2 and cam.disconnects == 2


def test_without_reconnect_the_stream_ends_offline() -> None:
    cam = ScheduledCamera([[1, 2]], failures=[], reconnect={"enabled": False})
    cam.open()
    chunks = list(cam)
    assert [int(c.events["t"][0]) for c in chunks] == [1, 2]
    assert cam.statuses[-1][0] == "offline" and "unplugged" in cam.statuses[-1][1]
    assert cam.sleeps == []


def test_close_while_waiting_to_reconnect_ends_the_stream_and_releases_once() -> None:
    cam = ScheduledCamera([[5]], failures=[100], reconnect={"initial_s": 0.1})
    cam.open()
    original = cam.fake_sleep

    def sleep_then_close(seconds: float) -> None:
        original(seconds)
        if len(cam.sleeps) == 3:
            cam.close()

    cam._sleep = sleep_then_close
    chunks = list(cam)
    assert len(chunks) == 1
    assert cam.disconnects == 1
    cam.close()
    assert cam.disconnects == 1


def test_events_never_go_backwards_across_repeated_outages() -> None:
    cam = ScheduledCamera([[10, 20], [5, 6], [1, 2]], failures=[1, 2], reconnect={"initial_s": 0.01, "max_attempts": 4})
    cam.open()
    out = []
    with pytest.raises(DeviceLostError):
        for chunk in cam:
            out.append(chunk)
    t = np.concatenate([c.events["t"] for c in out])
    assert len(t) == 6 and np.all(np.diff(t) > 0)
    assert sum(1 for c in out if c.meta.get("gap")) == 2
