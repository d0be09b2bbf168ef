"""The daemon's counters, latency percentiles and the optional Prometheus endpoint.

Why one plain object: the stats topic, the systemd STATUS line and Prometheus all read the same
numbers, so they cannot disagree. Each counter has exactly one writing thread (the stage it
belongs to), so plain ``+=`` under the GIL is enough; readers take snapshots.
Latencies are host milliseconds from window close (windowing emitted it) to publish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Counters:
    """Totals since start; each field is written by one stage only (named in the comment)."""

    events_in: int = 0  # reader
    events_lost_reader: int = 0  # reader
    events_windowed: int = 0  # windowing
    windows_closed: int = 0  # windowing
    windows_published: int = 0  # publisher


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
            drops = snap["drops"]
            yield CounterMetricFamily("eventclipd_windows_dropped", "windows dropped by the drop policy",
                                      value=drops["windows_policy"])
            yield CounterMetricFamily("eventclipd_reader_events_lost", "events lost at the reader",
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

    registry = prom.CollectorRegistry()
    registry.register(_Collector())
    server, thread = prom.start_http_server(port, addr=addr, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=2)

    return stop
