"""The streaming pipeline: reader -> windowing -> accumulation/micro-batching -> encoder -> heads -> publisher.

Each stage is a thread joined to the next by a queue. On the CPU path the windowing stage also
counts each chunk into the windows it falls in while they are open
(:class:`~eventclip.frames.running.RunningCounts`), so a window that closes needs only normalising,
resizing and the encoder: the count is off the close-to-publish path. The reader hands chunks to an
:class:`~eventclip.daemon.queues.EventInbox` that never blocks it; windowing feeds a
:class:`~eventclip.daemon.queues.WindowQueue` that drops windows by policy when inference lags;
every later queue is small and blocking, so back-pressure stops at the window queue. Threads are
enough: the heavy work (numba, numpy, ONNX Runtime, torch) releases the GIL.

Every stage marks when it starts and finishes an item. The heartbeat sends systemd's
``WATCHDOG=1`` only while no stage has been busy on one item longer than the stall limit, so a
wedged encoder or a dead lock makes systemd restart the daemon.

The live page (``live``, a :class:`~eventclip.daemon.live.hub.LiveHub`) costs nothing while no
page is open: only then does the model input of a batch travel on with its embeddings and
results (a reference, no copy), and the publishing stage hands it over with the batch's windows.

Shutdown (:meth:`Pipeline.request_stop`): the source is closed, the end marker flows through and
drains the windows already queued, ``offline`` is published. An error in any stage is published
on ``status`` as ``error`` and the pipeline stops with exit status 1.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eventclip.daemon.config import DaemonConfig
from eventclip.daemon.metrics import Metrics, percentiles
from eventclip.daemon.notify import Notifier
from eventclip.daemon.publish import Publisher
from eventclip.daemon.queues import END, EventInbox, WindowQueue
from eventclip.events import Geometry
from eventclip.sensors.base import Source

log = logging.getLogger(__name__)

_POLL_S = 0.1
"""How often blocked stages look at the abort flag (s)."""


class Engine(Protocol):
    """The model side of the pipeline (:class:`eventclip.daemon.engine.ClassifierEngine` is the real one)."""

    backend_name: str
    prompts_path: Path
    anomaly_threshold: float

    def model_input(self, windows: list, geometry: Geometry) -> np.ndarray:
        """(B, 3, S, S) float32 encoder input for a micro-batch of windows."""

    def running_counts(self, windower: Any, geometry: Geometry) -> Any:
        """An object counting windows while they are open (``add(events)``, ``take(window)``), or None."""

    def model_input_counts(self, counts: list, geometry: Geometry) -> np.ndarray:
        """(B, 3, S, S) float32 encoder input from the counts ``running_counts`` kept."""

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(B, D) L2-normalised embeddings."""

    def classify(self, windows: list, embeddings: np.ndarray) -> list:
        """One :class:`eventclip.model.heads.Result` per window, with the prompts loaded now."""

    def reload_prompts(self, path: Path) -> None:
        """Load and encode a new prompts file; raise (keeping the old) when it is invalid."""


class Windower(Protocol):
    """A streaming windower (:mod:`eventclip.frames.windows`)."""

    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list: ...

    def flush(self) -> list: ...


@dataclass
class _Item:
    """A window on its way through the pipeline, stamped with when it closed (monotonic s: when the
    reader handed over the chunk that proved its end), with its pixel counts when they were kept
    while it was open."""

    window: Any
    closed_at: float
    counts: np.ndarray | None = None


class _Stage:
    """A named pipeline thread whose ``busy_since`` feeds the watchdog."""

    def __init__(self, name: str, target: Callable[[_Stage], None], on_error: Callable[[str, BaseException], None]):
        self.name = name
        self.busy_since: float | None = None
        self._target = target
        self._on_error = on_error
        self.thread = threading.Thread(target=self._run, name=f"eventclipd-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self._target(self)
        except BaseException as exc:  # noqa: BLE001 - reported on the status topic, then re-raised nowhere
            self._on_error(self.name, exc)
        finally:
            self.busy_since = None

    def busy(self) -> None:
        self.busy_since = time.monotonic()

    def idle(self) -> None:
        self.busy_since = None


def _put(q: queue.Queue, item: Any, abort: threading.Event) -> bool:
    """Blocking put that gives up when the pipeline aborts; False then."""
    while not abort.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, abort: threading.Event) -> Any:
    """Blocking get that returns END when the pipeline aborts."""
    while not abort.is_set():
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return END


class Pipeline:
    """One running stream: build it, :meth:`start`, then :meth:`wait` for the exit status."""

    def __init__(
        self,
        source: Source,
        windower: Windower,
        engine: Engine,
        publisher: Publisher,
        config: DaemonConfig,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        stall_s: float = 30.0,
        live: Any = None,
    ) -> None:
        self.source = source
        self.windower = windower
        self.engine = engine
        self.publisher = publisher
        self.config = config
        self.notifier = notifier or Notifier(env={})
        self.metrics = metrics or Metrics()
        self.live = live
        wd = self.notifier.watchdog_usec
        self.stall_s = wd / 1e6 if wd else stall_s
        self.geometry: Geometry | None = None
        self._running: Any = None
        self.inbox = EventInbox(config.max_pending_events)
        self.windows = WindowQueue(config.window_queue, config.drop_policy, config.keep_every_n)
        self.frames_q: queue.Queue = queue.Queue(maxsize=2)
        self.embed_q: queue.Queue = queue.Queue(maxsize=2)
        self.result_q: queue.Queue = queue.Queue(maxsize=4)
        self.error: str | None = None
        self.last_stats: dict = {}
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stages = [
            _Stage("reader", self._read, self._fail),
            _Stage("windowing", self._window, self._fail),
            _Stage("accumulate", self._accumulate, self._fail),
            _Stage("encoder", self._encode, self._fail),
            _Stage("heads", self._heads, self._fail),
            _Stage("publisher", self._publish, self._fail),
        ]
        self._heartbeat = threading.Thread(target=self._beat, name="eventclipd-heartbeat", daemon=True)

    # ---- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Publish ``online`` and start every stage (the source must be open)."""
        self.geometry = self.source.geometry
        self._running = self.engine.running_counts(self.windower, self.geometry)
        self.publisher.send("status", state="online", detail=f"{self.source.name} via {self.engine.backend_name}")
        for stage in self._stages:
            stage.thread.start()
        self._heartbeat.start()

    def request_stop(self) -> None:
        """Begin a clean shutdown (signal-safe: only sets a flag and closes the source)."""
        if not self._stopping.is_set():
            self._stopping.set()
            self.notifier.stopping()
            self.source.close()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the stream to end (or stop); publish ``offline``; return the exit status."""
        publisher_stage = self._stages[-1]
        while publisher_stage.thread.is_alive():
            publisher_stage.thread.join(_POLL_S)
            if self._stopping.is_set():
                publisher_stage.thread.join(self.config.shutdown_timeout_s)
                break
            if timeout is not None:
                timeout -= _POLL_S
                if timeout <= 0:
                    break
        self._abort.set()
        self.source.close()
        deadline = time.monotonic() + 0.5  # stages poll the abort flag every _POLL_S
        for stage in self._stages:
            stage.thread.join(max(0.0, deadline - time.monotonic()))
            if stage.thread.is_alive():
                log.warning("stage %s still busy at exit (its thread is abandoned)", stage.name)
        self._done.set()
        self._heartbeat.join(0.5)
        self._send_stats()
        detail = "error: " + self.error if self.error else ("stopped" if self._stopping.is_set() else "end of stream")
        self.publisher.send("status", state="offline", detail=detail)
        return 1 if self.error else 0

    def reload_prompts(self, path: Path | None = None) -> bool:
        """Swap in a new prompts file without touching the stream; on failure keep the old one."""
        path = Path(path or self.engine.prompts_path)
        try:
            self.engine.reload_prompts(path)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old prompts and is reported
            log.error("prompts reload rejected, keeping %s: %s", self.engine.prompts_path, exc)
            self.publisher.send("status", state="online",
                                detail=f"prompts reload rejected ({exc}); still using {self.engine.prompts_path}")
            return False
        log.info("prompts reloaded from %s", path)
        self.publisher.send("status", state="online", detail=f"prompts reloaded from {path}")
        return True

    def _fail(self, stage: str, exc: BaseException, abort: bool = True) -> None:
        """Report the first failure on ``status``; ``abort`` stops every stage now, else the
        stages drain what is already queued (a corrupt file: the events before it are valid)."""
        with self._lock:
            first = self.error is None
            if first:
                self.error = f"{stage}: {exc}"
        if first:
            log.error("pipeline stage %s failed: %s", stage, exc, exc_info=not isinstance(exc, ValueError))
            self.publisher.send("status", state="error", detail=self.error)
            self.notifier.status(f"error: {self.error}")
        if abort:
            self._abort.set()
        self.source.close()

    # ---- stages --------------------------------------------------------------------------

    def _read(self, stage: _Stage) -> None:
        c = self.metrics.counters
        try:
            for chunk in self.source:
                stage.busy()
                n = len(chunk.events)
                c.events_in += n
                if chunk.meta.get("gap"):
                    level = logging.INFO if chunk.meta.get("reason") == "loop" else logging.WARNING
                    log.log(level, "discontinuity in the stream: %s", chunk.meta)
                if not self.inbox.offer((chunk, time.monotonic()), n):
                    c.events_lost_reader += n
                stage.idle()
                if self._abort.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - reported; the windows read so far still drain
            if self._stopping.is_set():
                log.debug("source raised while closing", exc_info=True)
            else:
                self._fail("reader", exc, abort=False)
        finally:
            self.inbox.offer(END, 0)

    def _window(self, stage: _Stage) -> None:
        c = self.metrics.counters
        while not self._abort.is_set():
            got = self.inbox.get(_POLL_S)
            if got is None:
                continue
            stage.busy()
            if got is END:
                chunk, closed_at = END, time.monotonic()
                windows = self.windower.flush()
            else:
                # A window closes when the chunk proving its end reaches the daemon: latency runs
                # from the reader's hand-off, so time spent waiting in the inbox is included.
                chunk, closed_at = got
                c.events_windowed += len(chunk.events)
                windows = self.windower.push(chunk.events, chunk.t_end_us)
                if self._running is not None:
                    self._running.add(chunk.events)
            for w in windows:
                c.windows_closed += 1
                self.windows.put(_Item(w, closed_at, None if self._running is None else self._running.take(w)))
            stage.idle()
            if chunk is END:
                self.windows.put(END)
                return

    def _accumulate(self, stage: _Stage) -> None:
        while not self._abort.is_set():
            batch = self.windows.get_batch(self.config.batch_size, _POLL_S)
            if not batch:
                continue
            if batch[0] is END:
                _put(self.frames_q, END, self._abort)
                return
            stage.busy()
            if all(item.counts is not None for item in batch):
                x = self.engine.model_input_counts([item.counts for item in batch], self.geometry)
            else:
                x = self.engine.model_input([item.window for item in batch], self.geometry)
            stage.idle()
            if not _put(self.frames_q, (batch, x), self._abort):
                return

    def _encode(self, stage: _Stage) -> None:
        while True:
            got = _get(self.frames_q, self._abort)
            if got is END:
                _put(self.embed_q, END, self._abort)
                return
            batch, x = got
            stage.busy()
            emb = self.engine.encode(x)
            stage.idle()
            shown = x if self.live is not None and self.live.watching else None
            if not _put(self.embed_q, (batch, shown, emb), self._abort):
                return

    def _heads(self, stage: _Stage) -> None:
        while True:
            got = _get(self.embed_q, self._abort)
            if got is END:
                _put(self.result_q, END, self._abort)
                return
            batch, shown, emb = got
            stage.busy()
            results = self.engine.classify([item.window for item in batch], emb)
            stage.idle()
            if not _put(self.result_q, (batch, shown, results), self._abort):
                return

    def _publish(self, stage: _Stage) -> None:
        c = self.metrics.counters
        while True:
            got = _get(self.result_q, self._abort)
            if got is END:
                return
            stage.busy()
            batch, shown, results = got
            for item, result in zip(batch, results, strict=True):
                self._publish_one(item, result)
                c.windows_published += 1
            if shown is not None:
                self.live.offer([item.window for item in batch], shown, self.geometry)
            stage.idle()

    def _publish_one(self, item: _Item, result: Any) -> None:
        w = item.window
        n_events = int(w.n_events)
        latency_ms = (time.monotonic() - item.closed_at) * 1000.0
        labels = [{"label": name, "score": min(max(float(s), 0.0), 1.0)} for name, s in result.labels]
        score = None if result.anomaly is None else min(max(float(result.anomaly), 0.0), 1.0)
        self.publisher.send(
            "labels", t_start_us=int(w.t_start), t_end_us=int(w.t_end), n_events=n_events, labels=labels,
            anomaly_score=score, anomaly=bool(result.flag), latency_ms=latency_ms,
        )
        if score is not None:
            self.publisher.send(
                "anomaly", t_start_us=int(w.t_start), t_end_us=int(w.t_end), n_events=n_events, score=score,
                threshold=self.engine.anomaly_threshold, anomaly=bool(result.flag), latency_ms=latency_ms,
            )
        self.metrics.add_latency(latency_ms)

    # ---- heartbeat: stats, STATUS=, WATCHDOG=1 -------------------------------------------

    def healthy(self) -> bool:
        """False when some stage has been busy on one item for longer than the stall limit."""
        now = time.monotonic()
        return all(s.busy_since is None or now - s.busy_since < self.stall_s for s in self._stages)

    def _beat(self) -> None:
        interval = self.config.stats_interval_s
        wd = self.notifier.watchdog_usec
        keepalive = wd / 2e6 if wd else None
        next_stats = time.monotonic() + interval
        next_keepalive = time.monotonic()
        while not self._done.wait(min(interval, keepalive or interval, 0.25)):
            now = time.monotonic()
            if keepalive is not None and now >= next_keepalive:
                if self.healthy():
                    self.notifier.watchdog()
                else:
                    stuck = [s.name for s in self._stages if s.busy_since and now - s.busy_since >= self.stall_s]
                    log.error("pipeline wedged in %s; withholding the watchdog keep-alive", stuck)
                next_keepalive = now + keepalive
            if now >= next_stats:
                snap = self._send_stats()
                self.notifier.status(
                    f"{snap['events_per_s'] / 1e6:.2f} Mev/s, {snap['windows_per_s']:.1f} win/s, "
                    f"p99 {snap['latency_ms']['p99'] or 0:.1f} ms, drops {snap['drops']['windows_policy']}"
                )
                next_stats = now + interval

    _prev: tuple[float, int, int] | None = None

    def _send_stats(self) -> dict:
        c = self.metrics.counters
        now = time.monotonic()
        prev = self._prev or (self.metrics.started, 0, 0)
        dt = max(now - prev[0], 1e-9)
        self._prev = (now, c.events_in, c.windows_published)
        snap = {
            "interval_s": dt,
            "uptime_s": now - self.metrics.started,
            "events_per_s": (c.events_in - prev[1]) / dt,
            "windows_per_s": (c.windows_published - prev[2]) / dt,
            "events_total": c.events_in,
            "windows_total": c.windows_closed,
            "windows_published": c.windows_published,
            "drops": {
                "windows_policy": self.windows.dropped,
                "reader_events": c.events_lost_reader,
                "socket_hwm": dict(self.publisher.dropped),
            },
            "queue_depths": {
                "events": self.inbox.pending_events,
                "windows": len(self.windows),
                "frames": self.frames_q.qsize(),
                "embeddings": self.embed_q.qsize(),
                "results": self.result_q.qsize(),
            },
            "latency_ms": percentiles(self.metrics.take_latencies()),
            "backend": self.engine.backend_name,
            "prompts": str(self.engine.prompts_path),
        }
        self.last_stats = snap
        self.publisher.send("stats", **snap)
        return snap
