"""The daemon's counters, latency percentiles and the optional Prometheus endpoint.

Why one plain object: the stats topic, the systemd STATUS line and Prometheus all read the same
numbers, so they cannot disagree. Each counter has exactly one writing thread (the stage it
belongs to), so plain ``+=`` under the GIL is enough; readers take snapshots.
Latencies are host milliseconds from window close (the reader handing over the chunk that completed
it) to publish: the age of a result when it is published.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Counters:
    """Totals since start; each field is written by one stage only (named in the comment).

    Every event read ends in exactly one place: published (in a window that reached the publisher),
    dropped for one of the reasons of :meth:`events_dropped`, or still in flight.
    """

    events_in: int = 0  # reader
    events_overflow: int = 0  # reader: dropped from its queue at the memory bound (oldest first)
    events_shutdown: int = 0  # reader: a waiting replay's chunk given up at stop
    gaps: dict[str, int] = field(default_factory=dict)  # reader: discontinuities by reason
    events_windowed: int = 0  # windowing
    events_stale: int = 0  # windowing: chunks already older than the freshness budget, shed uncounted
    windows_closed: int = 0  # windowing
    windows_incomplete: int = 0  # windowing: windows that lost events before windowing (dropped)
    events_incomplete: int = 0  # windowing: the events those windows held
    events_policy: int = 0  # windowing (the window queue drops in the putting thread)
    windows_stale_frames: int = 0  # accumulate: windows older than the budget before their frames are made
    events_stale_frames: int = 0  # accumulate
    windows_stale_encoder: int = 0  # encoder: windows that grew too old waiting for it
    events_stale_encoder: int = 0  # encoder
    windows_stale_publish: int = 0  # publisher: windows the model finished after the budget
    events_stale_publish: int = 0  # publisher
    windows_published: int = 0  # publisher
    events_published: int = 0  # publisher

    @property
    def windows_stale(self) -> int:
        """Windows dropped for being older than the freshness budget (before frames, at the encoder or at publish)."""
        return self.windows_stale_frames + self.windows_stale_encoder + self.windows_stale_publish

    def events_dropped(self) -> dict[str, int]:
        """Events not published, by reason."""
        return {"reader_overflow": self.events_overflow, "stale_chunks": self.events_stale,
                "stale_windows": self.events_stale_frames + self.events_stale_encoder + self.events_stale_publish,
                "incomplete_windows": self.events_incomplete,
                "policy": self.events_policy, "shutdown": self.events_shutdown}

    @property
    def events_in_flight(self) -> int:
        """Events read and neither published nor dropped yet (in queues, open windows, the model)."""
        return self.events_in - self.events_published - sum(self.events_dropped().values())


@dataclass
class Metrics:
    """Counters plus a latency buffer that :meth:`take_latencies` empties each stats interval."""

    counters: Counters = field(default_factory=Counters)
    started: float = field(default_factory=time.monotonic)
    _latencies: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_latency(self, ms: float) -> None:
        """Record one window's close-to-publish latency in ms."""
        with self._lock:
            self._latencies.append(ms)

    def take_latencies(self) -> np.ndarray:
        """The latencies recorded since the previous call (and forget them: memory stays flat)."""
        with self._lock:
            out, self._latencies = self._latencies, []
        return np.asarray(out, dtype=np.float64)


def percentiles(latencies_ms: np.ndarray) -> dict[str, float | None]:
    """p50, p90, p99 and max of a latency sample; None each when the sample is empty."""
    if latencies_ms.size == 0:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(latencies_ms.max())}


def serve_prometheus(
    port: int, addr: str, snapshot: Callable[[], dict]
) -> Callable[[], None]:
    """Expose ``snapshot()`` (the latest stats message as a dict) on ``http://addr:port/metrics``.

    Returns a function that stops the server. Needs ``prometheus-client`` (extra ``metrics``).
    """
    from eventclip._optional import require

    prom = require("prometheus_client", "metrics", "the Prometheus metrics endpoint")
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _Collector:
        def collect(self):
            snap = snapshot()
            if not snap:
                return
            for key, help_text in (
                ("events_total", "events read from the sensor"),
                ("windows_total", "windows closed by windowing"),
                ("windows_published", "windows published on the labels topic"),
            ):
                yield CounterMetricFamily(f"eventclipd_{key}", help_text, value=snap[key])
            yield CounterMetricFamily("eventclipd_events_published", "events in windows published",
                                      value=snap["events_published"])
            drops = snap["drops"]
            windows = CounterMetricFamily("eventclipd_windows_dropped", "windows dropped, by reason",
                                          labels=["reason"])
            for reason in ("policy", "stale", "incomplete"):
                windows.add_metric([reason], drops[f"windows_{reason}"])
            yield windows
            events = CounterMetricFamily("eventclipd_events_dropped", "events not published, by reason",
                                         labels=["reason"])
            for reason, n in drops["events"].items():
                events.add_metric([reason], n)
            yield events
            yield CounterMetricFamily("eventclipd_reader_events_lost", "events dropped from the reader's queue",
                                      value=drops["reader_events"])
            hwm = CounterMetricFamily("eventclipd_socket_dropped", "messages dropped at the ZeroMQ HWM",
                                      labels=["topic"])
            for topic, n in drops["socket_hwm"].items():
                hwm.add_metric([topic], n)
            yield hwm
            depth = GaugeMetricFamily("eventclipd_queue_depth", "items waiting per queue", labels=["queue"])
            for name, n in snap["queue_depths"].items():
                depth.add_metric([name], n)
            yield depth
            lat = GaugeMetricFamily("eventclipd_latency_ms", "window close to publish (ms), last interval",
                                    labels=["quantile"])
            for q, v in snap["latency_ms"].items():
                if v is not None:
                    lat.add_metric([q], v)
            yield lat
            yield GaugeMetricFamily("eventclipd_events_per_second", "events/s, last interval",
                                    value=snap["events_per_s"])
            if snap.get("max_age_ms") is not None:
                yield GaugeMetricFamily("eventclipd_freshness_budget_ms", "oldest a window may be at the encoder",
                                        value=snap["max_age_ms"])
            if snap.get("threads"):
                threads = GaugeMetricFamily("eventclipd_threads", "threads per pool (thread plan)", labels=["pool"])
                for pool in ("cores", "decode", "encoder", "interop", "numba"):
                    threads.add_metric([pool], snap["threads"][pool])
                yield threads

    registry = prom.CollectorRegistry()
    registry.register(_Collector())
    server, thread = prom.start_http_server(port, addr=addr, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=2)

    return stop
