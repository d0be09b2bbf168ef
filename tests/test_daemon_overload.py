"""eventclipd when it cannot keep up (issue 18): the freshness budget, the reader queue's memory bound,
and the accounting of every event read. Real recordings replayed paced (in slow motion, so a short
file spans seconds), a real tiny model, real sockets; the overload comes from an encoder or a
windowing stage made slow on purpose, as a busy machine would make them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from eventclip.daemon.config import load_config
from eventclip.io import read_events
from tests.conftest import recording
from tests.test_daemon_stream import (
    SPARKLERS,
    Collector,
    _engine,
    _pipeline,
    _SlowEngine,
    _text_cache,  # noqa: F401 - fixtures: the autouse one (text embeddings in tmp), the model, the prompts
    package,  # noqa: F401
    prompts,  # noqa: F401
)


class _StallOnce:
    """Running counts whose ``add`` stalls once, at the ``at``-th chunk: the windowing thread (which calls
    it) falls behind by ``seconds`` while the paced reader keeps handing over chunks."""

    def __init__(self, inner, at: int, seconds: float) -> None:
        self.inner, self.at, self.seconds, self.calls = inner, at, seconds, 0

    def add(self, events: np.ndarray) -> None:
        self.calls += 1
        if self.calls == self.at:
            time.sleep(self.seconds)
        self.inner.add(events)

    def take(self, window):
        return self.inner.take(window)


class _SlowEveryChunk:
    """Running counts whose every ``add`` takes ``seconds`` more: windowing counts slower than the camera."""

    def __init__(self, inner, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    def add(self, events: np.ndarray) -> None:
        time.sleep(self.seconds)
        self.inner.add(events)

    def take(self, window):
        return self.inner.take(window)


class _SlowWindowing(_SlowEngine):
    def __init__(self, inner, at: int, seconds: float) -> None:
        super().__init__(inner, 0.0)
        self.at, self.seconds = at, seconds

    def running_counts(self, windower, geometry):
        inner = self.inner.running_counts(windower, geometry)
        return _SlowEveryChunk(inner, self.seconds) if self.at is None else _StallOnce(inner, self.at, self.seconds)


def _run(cfg, engine, sample=None):
    """Run a pipeline to the end of the file with a subscriber; (pipeline, labels messages, samples)."""
    from eventclip.daemon.publish import Publisher

    publisher = Publisher(cfg.publish, "test")
    coll = Collector(publisher.endpoint)
    samples: list = []
    try:
        assert publisher.wait_for_subscribers(1, 10)
        pipe = _pipeline(cfg, engine, publisher)
        pipe.start()
        if sample is not None:
            def poll() -> None:
                while not pipe._done.is_set():
                    samples.append(sample(pipe))
                    time.sleep(0.002)

            threading.Thread(target=poll, daemon=True).start()
        assert pipe.wait(timeout=120) == 0
        assert coll.done.wait(10)
    finally:
        coll.close()
        publisher.close()
    return pipe, coll.topic("labels"), samples


def _assert_every_event_accounted(pipe, n_file: int) -> dict:
    stats = pipe.last_stats
    dropped = stats["drops"]["events"]
    assert stats["events_total"] == n_file
    assert stats["events_in_flight"] == 0
    assert stats["events_published"] + sum(dropped.values()) == n_file
    return dropped


def _assert_published_windows_are_whole(labels: list[dict], t: np.ndarray) -> None:
    """Each published window holds exactly the file's events in [t_start, t_end): none lost a piece."""
    lo = np.searchsorted(t, [m["t_start_us"] for m in labels], side="left")
    hi = np.searchsorted(t, [m["t_end_us"] for m in labels], side="left")
    assert [m["n_events"] for m in labels] == (hi - lo).tolist()


def _cfg(prompts, **fields):
    base = {"sensor": "replay", "input": recording(SPARKLERS), "prompts": prompts, "publish": "tcp://127.0.0.1:*",
            "batch_size": 1}
    return load_config(None, {**base, **fields})


def test_windows_older_than_the_budget_are_dropped_not_published(package, prompts):
    """An encoder 5x too slow, a window queue that would hold everything: without a budget the age of
    what is published grows without bound; with one, old windows are dropped and counted as stale."""
    delay = 0.05
    cfg = _cfg(prompts, speed=0.1, window_us=1000, window_queue=10_000, max_age_ms=150)  # 100 windows/s host time
    pipe, labels, _ = _run(cfg, _SlowEngine(_engine(package, prompts), delay))
    stats = pipe.last_stats
    assert stats["max_age_ms"] == 150
    assert stats["drops"]["windows_stale"] > 10 and stats["drops"]["windows_policy"] == 0
    assert len(labels) == stats["windows_published"] > 5
    assert max(m["latency_ms"] for m in labels) <= 150  # no result older than the budget is published
    dropped = _assert_every_event_accounted(pipe, len(read_events(recording(SPARKLERS))))
    assert dropped["stale_windows"] > 0 and dropped["reader_overflow"] == dropped["stale_chunks"] == 0
    assert stats["windows_total"] == stats["windows_published"] + stats["drops"]["windows_stale"]


def test_windowing_behind_by_more_than_the_budget_sheds_chunks_and_drops_the_windows_they_touch(package, prompts):
    """Windowing stalls for 0.6 s while the paced reader goes on: the chunks it then finds older than the
    budget are shed without counting them (that is how it catches up), and the windows that lost
    them are dropped as incomplete; every window published is whole."""
    cfg = _cfg(prompts, speed=0.1, window_us=5000, max_age_ms=100)  # a chunk every 10 ms, a window every 50 ms
    pipe, labels, _ = _run(cfg, _SlowWindowing(_engine(package, prompts), at=20, seconds=0.6))
    events = read_events(recording(SPARKLERS)).events
    dropped = _assert_every_event_accounted(pipe, len(events))
    stats = pipe.last_stats
    assert dropped["stale_chunks"] > 0 and stats["drops"]["windows_incomplete"] > 0
    assert dropped["reader_overflow"] == 0
    assert len(labels) >= 3  # windows before the stall and after the catch-up
    _assert_published_windows_are_whole(labels, events["t"])


def test_windowing_at_half_the_camera_rate_still_publishes_whole_windows(package, prompts):
    """Counting takes twice as long as the camera takes to deliver: windowing keeps jumping to the newest
    window start, so whole windows come out at about the rate it can count them, instead of every
    window losing a chunk here and there."""
    cfg = _cfg(prompts, speed=0.1, window_us=5000, max_age_ms=200)  # a chunk every 10 ms, a window every 50 ms
    pipe, labels, _ = _run(cfg, _SlowWindowing(_engine(package, prompts), at=None, seconds=0.02))
    events = read_events(recording(SPARKLERS)).events
    dropped = _assert_every_event_accounted(pipe, len(events))
    assert dropped["stale_chunks"] > 0
    assert len(labels) >= pipe.last_stats["windows_total"] // 5  # ~half would be ideal; a few were the old outcome
    assert max(m["latency_ms"] for m in labels) <= 200
    _assert_published_windows_are_whole(labels, events["t"])


def test_behind_inside_the_newest_window_drops_nothing(package, prompts):
    """Behind by more than half the budget, but everything queued belongs to the window windowing is
    already counting: nothing can be dropped, and each event must still be windowed exactly once."""
    cfg = _cfg(prompts, speed=0.1, window_us=1_000_000, max_age_ms=100)  # the whole file is in one window
    pipe, labels, _ = _run(cfg, _SlowWindowing(_engine(package, prompts), at=10, seconds=0.3))
    events = read_events(recording(SPARKLERS)).events
    dropped = _assert_every_event_accounted(pipe, len(events))
    assert dropped["stale_chunks"] == 0 and pipe.metrics.counters.events_windowed == len(events)
    _assert_published_windows_are_whole(labels, events["t"])


def test_a_full_reader_queue_drops_its_oldest_events_counted_and_memory_stays_bounded(package, prompts):
    """The reader's queue is bounded in events (memory); a paced source is never blocked: the oldest
    queued chunks make room, counted as reader_overflow, and their windows are dropped as incomplete."""
    bound = 20_000  # ~4 of this file's 1-ms chunks
    cfg = _cfg(prompts, speed=0.1, window_us=5000, max_age_ms=60_000, max_pending_events=bound)
    pipe, labels, pending = _run(cfg, _SlowWindowing(_engine(package, prompts), at=20, seconds=0.6),
                                 sample=lambda p: p.inbox.pending_events)
    events = read_events(recording(SPARKLERS)).events
    dropped = _assert_every_event_accounted(pipe, len(events))
    stats = pipe.last_stats
    assert dropped["reader_overflow"] == stats["drops"]["reader_events"] > 0
    assert stats["drops"]["windows_incomplete"] > 0 and dropped["stale_chunks"] == 0
    assert max(pending) <= bound and max(pending) > bound // 2  # it filled, and never past the bound
    _assert_published_windows_are_whole(labels, events["t"])


def test_an_unpaced_replay_waits_for_room_and_loses_nothing(package, prompts):
    """speed 0 is a batch job: the reader waits when its queue is full, and no freshness budget applies."""
    cfg = _cfg(prompts, speed=0, window_us=5000, max_pending_events=20_000)
    pipe, labels, _ = _run(cfg, _SlowWindowing(_engine(package, prompts), at=5, seconds=0.5))
    events = read_events(recording(SPARKLERS)).events
    dropped = _assert_every_event_accounted(pipe, len(events))
    assert pipe.last_stats["max_age_ms"] is None and not any(dropped.values())
    assert sum(m["n_events"] for m in labels) == len(events)
    _assert_published_windows_are_whole(labels, events["t"])


@pytest.mark.parametrize(("window_us", "budget"), [(5_000, 200.0), (300_000, 600.0)])
def test_default_budget_is_two_windows_at_least_200_ms(prompts, window_us, budget):
    from eventclip.daemon.config import freshness_budget_ms

    assert freshness_budget_ms(_cfg(prompts), window_us) == budget
    assert freshness_budget_ms(_cfg(prompts, max_age_ms=50), window_us) == 50
