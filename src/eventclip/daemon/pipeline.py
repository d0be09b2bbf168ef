"""The streaming pipeline: reader -> windowing -> accumulation/micro-batching -> encoder -> heads -> publisher.

Each stage is a thread joined to the next by a queue. On the CPU path the windowing stage also
counts each chunk into the windows it falls in while they are open
(:class:`~eventclip.frames.running.RunningCounts`), so a window that closes needs only normalising,
resizing and the encoder: the count is off the close-to-publish path. The reader hands chunks to an
:class:`~eventclip.daemon.queues.EventInbox` that never blocks it; windowing feeds a
:class:`~eventclip.daemon.queues.WindowQueue` that drops windows by policy when inference lags;
every later queue is small and blocking, so back-pressure stops at the window queue. Threads are
enough: the heavy work (numba, numpy, ONNX Runtime, torch) releases the GIL.

Freshness: a live system should publish fresh results late rather than stale results forever. So,
for a paced source (a camera, a paced replay), windowing that finds itself behind by more than half
the freshness budget (``max_age_ms``) drops what is queued before the start of the newest window,
uncounted (which is how it catches up, a whole window at a time), and the accumulation and encoder
stages drop windows that could not be published within the budget (and the publisher any that
came out of the model older than it: no result older than the budget is published); all are
counted as ``stale``.
A window that lost events before windowing (dropped so, or from the reader's full queue) is dropped
as ``incomplete``, never published as if whole. Every event read is
published, dropped for a counted reason, or in flight (:class:`~eventclip.daemon.metrics.Counters`).
An unpaced replay is a batch job: its reader waits for room, and no budget applies.

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eventclip.daemon.config import DaemonConfig, freshness_budget_ms
from eventclip.daemon.metrics import Metrics, percentiles
from eventclip.daemon.notify import Notifier
from eventclip.daemon.publish import Publisher
from eventclip.daemon.queues import END, EventInbox, Hole, WindowQueue
from eventclip.daemon.threads import in_use
from eventclip.events import EVENT_DTYPE, EventChunk, Geometry
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
        """One :class:`eventclip.heads.base.Result` per window, with the prompts loaded now."""

    def reload_prompts(self, path: Path) -> None:
        """Load and encode a new prompts file; raise (keeping the old) when it is invalid."""


class Windower(Protocol):
    """A streaming windower (:mod:`eventclip.frames.windows`)."""

    def push(self, events: np.ndarray, t_end_us: int | None = None) -> list: ...

    def flush(self) -> list: ...


@dataclass(frozen=True)
class _Span:
    """What the later stages need of a window whose counts were kept while it was open: its times (µs)
    and event count. Why: the window itself holds views of every chunk it spans (tens of MB at
    tens of Mev/s), which would stay in memory while it waits for the encoder."""

    t_start: int
    t_end: int
    n_events: int


@dataclass
class _Item:
    """A window on its way through the pipeline, stamped with when it closed (monotonic s: when the
    reader handed over the chunk that proved its end), with its pixel counts when they were kept
    while it was open (then ``window`` is only a :class:`_Span`)."""

    window: Any
    closed_at: float
    counts: np.ndarray | None = None

    @property
    def n_events(self) -> int:
        return int(self.window.n_events)


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


def _reaches(item: Any) -> int | None:
    """The latest sensor time (µs, exclusive) an inbox item holds or proves complete; None when it says none."""
    if item is END:
        return None
    if isinstance(item, Hole):
        ends = (item.t_end_us, None if item.t_last_us is None else item.t_last_us + 1)
    else:
        chunk = item[0]
        ends = (chunk.t_end_us, int(chunk.events["t"][-1]) + 1 if len(chunk.events) else None)
    known = [t for t in ends if t is not None]
    return max(known) if known else None


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
        threads: dict | None = None,
        live: Any = None,
    ) -> None:
        """``threads``: the thread plan in use (:mod:`eventclip.daemon.threads`), reported in ``stats``."""
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
        self.threads = threads
        self.paced = bool(getattr(source, "paced", True))
        window_us = getattr(windower, "window_us", None) or config.window_us or 0
        self.max_age_ms = freshness_budget_ms(config, window_us) if self.paced else None
        """The freshness budget in ms (None: not applied, an unpaced replay)."""
        self._max_age_s = None if self.max_age_ms is None else self.max_age_ms / 1000.0
        self._service_s = 0.0
        """Recent longest time from the encoder taking a batch to its publication (s; written by the publisher)."""
        self._holes: deque[tuple[int, int]] = deque()
        """Time spans (µs, inclusive) of events lost before windowing, until every window over them closed."""
        self._pending: deque = deque()
        """Items windowing took from the inbox to catch up and still has to process (windowing thread only)."""
        self._windowed_until = -(1 << 62)
        """Sensor time (µs) the windower has been taken to."""
        self._catch_up_after = -(1 << 62)
        """No catch-up for chunks before this sensor time (µs): one per window at most."""
        self.inbox = EventInbox(config.max_pending_events)
        self.windows = WindowQueue(config.window_queue, config.drop_policy, config.keep_every_n,
                                   self._dropped_by_policy)
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
                    self._gap(chunk.meta)
                if self.paced:
                    c.events_overflow += self.inbox.offer(chunk, time.monotonic())
                else:
                    stage.idle()  # waiting for room is not being stuck on an item
                    while not self.inbox.put(chunk, time.monotonic(), _POLL_S):
                        if self._abort.is_set() or self._stopping.is_set():
                            c.events_shutdown += n
                            return
                stage.idle()
                if self._abort.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - reported; the windows read so far still drain
            if self._stopping.is_set():
                log.debug("source raised while closing", exc_info=True)
            else:
                self._fail("reader", exc, abort=False)
        finally:
            self.inbox.end()

    def _gap(self, meta: dict) -> None:
        """Count a discontinuity by reason. A looping replay's boundaries are logged once, then only
        counted (``stats.gaps``): one INFO line per pass was ~37 000 lines an hour."""
        reason = str(meta.get("reason", "unknown"))
        gaps = self.metrics.counters.gaps
        gaps[reason] = gaps.get(reason, 0) + 1
        if reason != "loop":
            log.warning("discontinuity in the stream: %s", meta)
        elif gaps[reason] == 1:
            log.info("discontinuity in the stream: %s; the replay loops, further loop boundaries are counted "
                     "in stats (gaps.loop), not logged", meta)

    def _window(self, stage: _Stage) -> None:
        c = self.metrics.counters
        while not self._abort.is_set():
            got = self._pending.popleft() if self._pending else self.inbox.get(_POLL_S)
            if got is None:
                continue
            stage.busy()
            if got is END:
                closed_at = time.monotonic()
                windows = self.windower.flush()
            elif isinstance(got, Hole):  # events the reader's full queue dropped (counted there)
                closed_at = time.monotonic()
                self._hole(got.t_first_us, got.t_last_us)
                windows = [] if got.t_end_us is None else self._push(np.empty(0, dtype=EVENT_DTYPE), got.t_end_us)
            else:
                # A window closes when the chunk proving its end reaches the daemon: latency runs
                # from the reader's hand-off, so time spent waiting in the inbox is included.
                chunk, closed_at = got
                if self._behind(chunk, closed_at) and self._catch_up(got):
                    stage.idle()
                    continue
                c.events_windowed += len(chunk.events)
                windows = self._push(chunk.events, chunk.t_end_us)
                if self._running is not None:
                    self._running.add(chunk.events)
            for w in windows:
                self._emit(w, closed_at)
            stage.idle()
            if got is END:
                self.windows.put(END)
                return

    def _push(self, events: np.ndarray, t_end_us: int | None) -> list:
        """Hand events to the windower, remembering how far in sensor time it has been taken (µs)."""
        reached = t_end_us if t_end_us is not None else (int(events["t"][-1]) + 1 if len(events) else None)
        if reached is not None:
            self._windowed_until = max(self._windowed_until, int(reached))
        return self.windower.push(events, t_end_us)

    def _hole(self, t_first: int | None, t_last: int | None) -> None:
        """Remember that the events in [t_first, t_last] (µs) never reached windowing."""
        if t_first is None or t_last is None:
            return
        if self._holes and self._holes[-1][1] >= t_first - 1:
            self._holes[-1] = (self._holes[-1][0], max(self._holes[-1][1], t_last))
        else:
            self._holes.append((t_first, t_last))

    def _behind(self, chunk: Any, handed_at: float) -> bool:
        """Windowing has fallen behind the freshness budget: this chunk waited more than half of it, and
        no catch-up happened yet in the window it belongs to."""
        if self._max_age_s is None or time.monotonic() - handed_at <= self._max_age_s / 2:
            return False
        ev = chunk.events
        return not len(ev) or int(ev["t"][0]) >= self._catch_up_after

    def _catch_up(self, first: tuple) -> bool:
        """Drop everything queued before the start of the newest window, so that window (and those after
        it) can still be counted whole and published within the budget; the windows before it lose
        events and are dropped as incomplete. True when something was dropped: windowing then goes on
        with what was kept (``_pending``); False leaves the queue as it was and ``first`` to the caller.

        Why whole windows: shedding chunks here and there (the oldest, or each one as it grows too old)
        leaves a hole in nearly every window, and beside a CPU hog at twice the sustainable rate that
        published almost nothing; jumping to a window start publishes whole windows at the rate
        windowing can count them.
        """
        stride = getattr(self.windower, "stride_us", None)
        items = [first, *self._pending, *self.inbox.take_all()]
        self._pending = deque(items[1:])  # as they were, should nothing be dropped: the caller goes on with first
        newest = max((t for t in map(_reaches, items) if t is not None), default=None)
        if stride is None or newest is None:
            return False
        t0 = self.windower.t0_us
        if t0 is None:
            t0 = int(first[0].events["t"][0]) // stride * stride if len(first[0].events) else newest // stride * stride
        start = t0 + max(0, (newest - 1 - t0) // stride) * stride  # the window holding the newest time
        self._catch_up_after = start + stride
        if start <= self._windowed_until:  # already in the newest window: nothing queued is before it
            return False
        kept: deque = deque()
        dropped = 0
        for item in items:
            if item is END or isinstance(item, Hole):
                if isinstance(item, Hole) and (item.t_last_us is None or item.t_last_us < start):
                    self._hole(item.t_first_us, item.t_last_us)  # its events were counted by the reader
                    continue
                kept.append(item)
                continue
            chunk, handed_at = item
            t = chunk.events["t"]
            k = int(np.searchsorted(t, start, side="left"))
            if k:
                dropped += k
                self._hole(int(t[0]), int(t[k - 1]))
            if k == len(t) and (chunk.t_end_us is None or chunk.t_end_us <= start):
                continue
            kept.append(item if not k else (EventChunk(chunk.events[k:], chunk.geometry, chunk.t_end_us, chunk.meta),
                                            handed_at))
        if len(kept) == len(items) and not dropped:
            return False  # nothing was before it after all
        self._pending = kept
        self.metrics.counters.events_stale += dropped
        log.debug("windowing behind: dropped %d events before the window at %d µs", dropped, start)
        return True

    def _emit(self, w: Any, closed_at: float) -> None:
        """Queue a closed window for inference, unless events of it were lost before windowing."""
        c = self.metrics.counters
        c.windows_closed += 1
        counts = None if self._running is None else self._running.take(w)
        holes = self._holes
        while holes and holes[0][1] < w.t_start:
            holes.popleft()
        if holes and holes[0][0] < w.t_end:
            c.windows_incomplete += 1
            c.events_incomplete += w.n_events
            return
        # With counts kept, the window's chunks are let go, unless a live page wants its sensor frame.
        watched = self.live is not None and self.live.watching
        window = w if counts is None or watched else _Span(int(w.t_start), int(w.t_end), w.n_events)
        self.windows.put(_Item(window, closed_at, counts))

    def _dropped_by_policy(self, item: _Item) -> None:
        self.metrics.counters.events_policy += item.n_events

    def _accumulate(self, stage: _Stage) -> None:
        while not self._abort.is_set():
            batch = self.windows.get_batch(self.config.batch_size, _POLL_S)
            if not batch:
                continue
            if batch[0] is END:
                _put(self.frames_q, END, self._abort)
                return
            batch = [batch[i] for i in self._fresh(batch, at_encoder=False)]  # no frames for windows already too old
            if not batch:
                continue
            stage.busy()
            if all(item.counts is not None for item in batch):
                x = self.engine.model_input_counts([item.counts for item in batch], self.geometry)
            else:
                x = self.engine.model_input([item.window for item in batch], self.geometry)
            stage.idle()
            if not _put(self.frames_q, (batch, x), self._abort):
                return

    def _fresh(self, batch: list[_Item], at_encoder: bool) -> list[int]:
        """Indices of the windows of ``batch`` that can still be published within the freshness budget: age
        now plus the recent longest time from the encoder to publication (at most half the budget is set
        aside for that, so an encoder slower than the budget still gets the freshest windows); the others
        are counted stale. Checked where frames are made and again as the encoder takes them."""
        if self._max_age_s is None:
            return list(range(len(batch)))
        now = time.monotonic()
        limit = self._max_age_s - min(self._service_s, self._max_age_s / 2)
        fresh = [i for i, item in enumerate(batch) if now - item.closed_at <= limit]
        if len(fresh) < len(batch):
            c = self.metrics.counters
            n_windows = len(batch) - len(fresh)
            n_events = sum(item.n_events for item in batch) - sum(batch[i].n_events for i in fresh)
            if at_encoder:  # each counter has one writing thread
                c.windows_stale_encoder += n_windows
                c.events_stale_encoder += n_events
            else:
                c.windows_stale_frames += n_windows
                c.events_stale_frames += n_events
        return fresh

    def _encode(self, stage: _Stage) -> None:
        while True:
            got = _get(self.frames_q, self._abort)
            if got is END:
                _put(self.embed_q, END, self._abort)
                return
            batch, x = got
            keep = self._fresh(batch, at_encoder=True)  # they may have waited here behind other batches
            if not keep:
                continue
            if len(keep) < len(batch):
                batch, x = [batch[i] for i in keep], x[keep]
            stage.busy()
            started = time.monotonic()
            emb = self.engine.encode(x)
            stage.idle()
            shown = x if self.live is not None and self.live.watching else None
            if not _put(self.embed_q, (batch, shown, emb, started), self._abort):
                return

    def _heads(self, stage: _Stage) -> None:
        while True:
            got = _get(self.embed_q, self._abort)
            if got is END:
                _put(self.result_q, END, self._abort)
                return
            batch, shown, emb, started = got
            stage.busy()
            results = self.engine.classify([item.window for item in batch], emb)
            stage.idle()
            if not _put(self.result_q, (batch, shown, results, started), self._abort):
                return

    def _publish(self, stage: _Stage) -> None:
        c = self.metrics.counters
        while True:
            got = _get(self.result_q, self._abort)
            if got is END:
                return
            stage.busy()
            batch, shown, results, started = got
            for item, result in zip(batch, results, strict=True):
                age_ms = (time.monotonic() - item.closed_at) * 1000.0
                if self.max_age_ms is not None and age_ms > self.max_age_ms:
                    c.windows_stale_publish += 1  # the model ran late: no result older than the budget goes out
                    c.events_stale_publish += item.n_events
                    continue
                self._publish_one(item, result, age_ms)
                c.windows_published += 1
                c.events_published += item.n_events
            # A slowly decaying maximum, not an average: a spike (the encoder descheduled by another
            # job) must be planned for, or the windows let through just before it come out too old.
            self._service_s = max(time.monotonic() - started, 0.95 * self._service_s)
            if shown is not None:
                self.live.offer([item.window for item in batch], shown, self.geometry)
            stage.idle()

    def _publish_one(self, item: _Item, result: Any, latency_ms: float) -> None:
        """Publish a window's labels (and anomaly) with its age in ms, as checked against the budget."""
        w = item.window
        n_events = int(w.n_events)
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
            "events_published": c.events_published,
            "events_in_flight": c.events_in_flight,
            "windows_total": c.windows_closed,
            "windows_published": c.windows_published,
            "max_age_ms": self.max_age_ms,
            "drops": {
                "windows_policy": self.windows.dropped,
                "windows_stale": c.windows_stale,
                "windows_incomplete": c.windows_incomplete,
                "reader_events": c.events_overflow,
                "events": c.events_dropped(),
                "socket_hwm": dict(self.publisher.dropped),
            },
            "gaps": dict(c.gaps),
            "threads": None if self.threads is None else {**self.threads,
                                                           "in_use": in_use(getattr(self.engine, "encoder", None))},
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
