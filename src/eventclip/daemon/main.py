"""``eventclipd``: the streaming inference daemon (console script entry :func:`entry`).

Start-up order: everything that can be checked without the model is checked first (prompts, input
file, model folder, the publish and metrics ports, a replayed file's header), so a mistake is
reported in a second, not after the model load (6-43 s); then the model (and any TensorRT engine)
loads, with ``EXTEND_TIMEOUT_USEC`` keep-alives while it takes long, while the main thread stays
free to answer SIGTERM (``offline`` is published even during start-up); then a live sensor is opened;
only then ``READY=1``. Exit status: 0 after a clean stop or the end of a file, 1 after a runtime
failure (sensor, corrupt file, model), 2 for a bad configuration or command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from eventclip.daemon.config import DaemonConfig, load_config
from eventclip.errors import ConfigError, EventclipError
from eventclip.runtime.base import BACKENDS
from eventclip.sensors.base import SENSORS

log = logging.getLogger("eventclipd")


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags; each one overrides the YAML field of the same name."""
    p = argparse.ArgumentParser(
        prog="eventclipd",
        description="Stream event-camera windows through an eventclip model and publish labels over ZeroMQ.",
    )
    p.add_argument("--config", type=Path, help="YAML file with any of the settings below (flags win)")
    p.add_argument("--demo", action="store_true",
                   help="replay the bundled sample through the bundled model and print what is published")
    p.add_argument("--sensor", choices=SENSORS.names(), help="the source's kind (source.kind); another kind than "
                   "the config file's starts that kind with its defaults")
    p.add_argument("--input", type=Path, help="file to replay (sensor replay), video file (sensor video), or a "
                   "recording played through the Metavision SDK instead of a camera (sensor prophesee): source.path")
    p.add_argument("--speed", type=float, help="replay speed factor; 0 = as fast as possible (default 1.0): "
                   "source.speed and source.realtime")
    p.add_argument("--sensor-id", help="name used in every message (default: the source's id)")
    p.add_argument("--prompts", type=Path, help="prompts YAML (classes, templates, anomaly set)")
    p.add_argument("--model", type=Path, help="model package folder, `default` or a pulled name (`eventclip models "
                   "list`); default: the bundled model")
    p.add_argument("--backend", choices=BACKENDS.choices(),
                   help="backend.kind (default auto: the fastest that can run the model)")
    p.add_argument("--publish", help="ZeroMQ endpoint to bind (default tcp://127.0.0.1:5556)")
    p.add_argument("--allow-remote", action="store_true", default=None,
                   help="allow binding a non-loopback address")
    p.add_argument("--topic-prefix", help="topic prefix (default eventclip)")
    p.add_argument("--encoding", choices=["json", "msgpack"])
    p.add_argument("--window-us", type=int, help="window length in µs (default: the model card's)")
    p.add_argument("--top-k", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--drop-policy", choices=["drop_oldest", "keep_every_nth"])
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="serve the live page (frames, labels, anomaly timeline, stats) on this address, e.g. "
                   "127.0.0.1:8080; loopback unless --allow-remote (extra: http)")
    p.add_argument("--threads", type=int,
                   help="cores the daemon may use (default and upper bound: its CPU affinity and cgroup quota)")
    p.add_argument("--max-age-ms", type=float,
                   help="freshness budget: drop windows older than this at the encoder (default: 2 windows, >= 200)")
    p.add_argument("--wait-for-subscribers", type=int, help="hold the stream until N subscriptions arrived")
    p.add_argument("--log-format", choices=["json", "text"])
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


_FLAG_FIELDS = (
    "sensor", "input", "speed", "sensor_id", "prompts", "model", "backend", "publish", "allow_remote",
    "topic_prefix", "encoding", "window_us", "top_k", "batch_size", "drop_policy", "metrics_port", "http",
    "wait_for_subscribers", "log_format", "log_level", "threads", "max_age_ms",
)


def config_from_args(args: argparse.Namespace) -> DaemonConfig:
    """The validated config: YAML file, then flags on top; ``--demo`` fills in the bundled files."""
    overrides: dict[str, Any] = {name: getattr(args, name) for name in _FLAG_FIELDS}
    if args.demo:
        from eventclip import data

        defaults = {
            "sensor": "replay",
            "input": data.sample_recording_path(),
            "model": data.default_model_path(),
            "prompts": data.default_prompts_path(),
            "publish": "tcp://127.0.0.1:*",
            "wait_for_subscribers": 1,
            "log_format": "text",
            "log_level": "WARNING",
        }
        for key, value in defaults.items():
            if overrides.get(key) is None:
                overrides[key] = value
    return load_config(args.config, overrides)


class SensorStatus:
    """A source's ``on_status`` callback: logs every state, and publishes the camera's own events.

    The pipeline publishes ``online`` at start and ``offline`` at exit itself; from the sensor we
    forward ``reconnecting`` and ``error`` (camera unplugged, driver failure) and the ``online``
    that follows a reconnection, so subscribers see the outage as it happens.
    """

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.outage = False

    def __call__(self, state: str, detail: str) -> None:
        log.info("sensor %s: %s", state, detail)
        if state in ("reconnecting", "error"):
            self.outage = True
            self.publisher.send("status", state=state, detail=f"sensor: {detail}")
        elif state == "online" and self.outage:
            self.outage = False
            self.publisher.send("status", state="online", detail=f"sensor: {detail}")


def run(cfg: DaemonConfig, on_labels: Any = None, plan: Any = None) -> int:
    """Run the daemon until the stream ends or a signal stops it; return the exit status.

    Order: signal handlers, the thread plan, every check that needs no model (prompts, files, the
    publish and metrics ports; :mod:`eventclip.daemon.preflight`), ``starting`` on the status topic,
    a replayed file opened; then the model loads in a thread while this one waits for it or for
    SIGTERM (which publishes ``offline`` and returns at once). ``on_labels``, when given, is started
    as a thread with the bound endpoint (``--demo``'s printer). ``plan``: the thread plan
    (:func:`eventclip.daemon.threads.plan_threads`; made from ``cfg.threads`` when None). The
    previous signal handlers and thread settings are put back on return.
    """
    stop_requested = threading.Event()
    running: list[Any] = []

    def on_stop(signum: int, frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop_requested.set()
        if running:
            running[0].request_stop()

    def on_hup(signum: int, frame: object) -> None:
        if running:
            threading.Thread(target=running[0].reload_prompts, name="eventclipd-reload", daemon=True).start()
        else:
            log.info("SIGHUP before the stream started: the prompts file is read at start-up anyway")

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        return _run(cfg, on_labels, plan, stop_requested, running)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(cfg: DaemonConfig, on_labels: Any, plan: Any, stop_requested: threading.Event, running: list[Any]) -> int:
    from eventclip import sensors
    from eventclip.daemon import preflight, threads
    from eventclip.daemon.notify import Notifier
    from eventclip.daemon.publish import Publisher

    notifier = Notifier()
    notifier.status("starting")
    plan = plan or threads.plan_threads(threads.allowed_cores(cfg.threads))
    restore_threads = threads.apply(plan)
    publisher = stop_metrics = source = None
    try:
        preflight.check_files(cfg)
        publisher = Publisher(cfg.publish, cfg.sensor_id or cfg.source.kind, cfg.topic_prefix, cfg.encoding,
                              cfg.send_hwm, cfg.curve)
        stop_metrics = preflight.serve_metrics(cfg, lambda: running[0].last_stats if running else {})
        source = sensors.create(cfg.source, on_status=SensorStatus(publisher))
        live = SENSORS.capabilities(cfg.source.kind)["live"]
        if not live:
            source.open()  # a file: its errors come before the model, and nothing starts streaming yet
        publisher.send("status", state="starting",
                       detail=f"loading model {cfg.model or 'bundled'} ({cfg.backend.kind})")
        log.info("starting: loading model %s (%s)", cfg.model or "bundled", cfg.backend.kind)
        try:
            engine = preflight.StartUp(lambda: _load(cfg, notifier, plan, source, live)).wait(stop_requested)
        except Exception as exc:  # subscribers saw "starting": tell them why nothing follows, then exit 1 or 2
            publisher.send("status", state="error", detail=f"start-up: {exc}")
            publisher.send("status", state="offline", detail="start-up failed")
            raise
        if engine is None:
            log.info("stopped during start-up")
            notifier.stopping()
            publisher.send("status", state="offline", detail="stopped during start-up")
            return 0
        return _stream(cfg, on_labels, plan, engine, source, publisher, notifier, stop_requested, running)
    finally:
        if source is not None:
            source.close()
        if stop_metrics is not None:
            stop_metrics()
        if publisher is not None:
            publisher.close()
        notifier.close()
        restore_threads()


def _load(cfg: DaemonConfig, notifier: Any, plan: Any, source: Any, live: bool) -> Any:
    """The slow part of start-up: the model, then a live camera, then one warm-up window."""
    from eventclip.daemon.engine import load_engine

    notifier.status("loading model")
    engine = load_engine(cfg, notifier, threads=plan.encoder)
    if live:
        source.open()
    engine.warm_up(source.geometry)
    return engine


def _stream(cfg: DaemonConfig, on_labels: Any, plan: Any, engine: Any, source: Any, publisher: Any, notifier: Any,
            stop_requested: threading.Event, running: list[Any]) -> int:
    from eventclip.daemon.metrics import Metrics
    from eventclip.daemon.pipeline import Pipeline
    from eventclip.frames.windows import make_windower

    publisher.sensor_id = cfg.sensor_id or source.sensor_id or source.name
    log.info("publishing on %s", publisher.endpoint)
    printer = None
    if on_labels is not None:
        printer = threading.Thread(target=on_labels, args=(publisher.endpoint, cfg.topic_prefix), daemon=True)
        printer.start()
    stop_http = None
    try:
        if cfg.wait_for_subscribers and not publisher.wait_for_subscribers(cfg.wait_for_subscribers,
                                                                           cfg.wait_timeout_s, stop_requested):
            log.warning("only %d of %d subscriptions after %.1f s; starting anyway",
                        publisher.subscriber_count, cfg.wait_for_subscribers, cfg.wait_timeout_s)
        window_us = cfg.window_us or engine.window_us
        live, stop_http = _live_page(cfg, engine, publisher)
        pipeline = Pipeline(source, make_windower(window_us=window_us), engine, publisher, cfg, notifier, Metrics(),
                            threads=plan.as_dict(), live=live)
        running.append(pipeline)
        if stop_requested.is_set():
            log.info("stopped before the stream started")
            publisher.send("status", state="offline", detail="stopped during start-up")
            return 0
        pipeline.start()
        notifier.ready(f"streaming {source.name}: {window_us} µs windows, backend {engine.backend_name}")
        log.info("ready: %s, %d µs windows, backend %s, freshness budget %s, publishing on %s", source.name,
                 window_us, engine.backend_name, "off" if pipeline.max_age_ms is None else
                 f"{pipeline.max_age_ms:g} ms", publisher.endpoint)
        rc = pipeline.wait()
    finally:
        if stop_http is not None:
            stop_http()
        if printer is not None:
            printer.join(1.0)
    log.info("exiting with status %d", rc)
    return rc


def _live_page(cfg: DaemonConfig, engine: Any, publisher: Any) -> tuple[Any, Any]:
    """The live page's hub and a function stopping its server, or (None, None) without ``http``.

    The hub observes every published message and is handed each batch's frames by the pipeline.
    """
    if cfg.http is None:
        return None, None
    from eventclip.daemon.config import parse_http_address
    from eventclip.daemon.live.hub import LiveHub
    from eventclip.daemon.live.server import LiveServer

    hub = LiveHub(engine.classifier.representation)
    server = LiveServer(hub, *parse_http_address(cfg.http))
    server.start()
    publisher.observers.append(hub.on_message)
    return hub, server.stop


def _demo_printer(cfg: DaemonConfig) -> Any:
    """``--demo``'s printer, with the sample's true labels when the replayed file is the bundled sample."""
    from eventclip import data
    from eventclip.daemon.demo import DemoPrinter, Truth

    truth = None
    if getattr(cfg.source, "path", None) == data.sample_recording_path():
        try:
            truth = Truth(data.sample_labels_path())
        except (EventclipError, OSError, ValueError, KeyError) as exc:
            log.warning("the sample's labels cannot be read (%s); printing predictions only", exc)
    bundled = cfg.model is None or str(cfg.model) == "default" or cfg.model == data.default_model_path()
    model = f"the bundled default model ({cfg.prompts.name})" if bundled else str(cfg.model)
    speed = cfg.source.speed if getattr(cfg.source, "realtime", False) else 0.0
    return DemoPrinter(sys.stdout, truth, model, speed)


def main(argv: list[str] | None = None, *, set_env: bool = False) -> int:
    """Parse, plan the threads, configure logging, run; map errors to exit statuses 2 and 1.

    ``set_env``: also size the OpenMP/BLAS and numba pools through the environment, before those
    libraries load (the ``eventclipd`` program does; an in-process caller keeps its environment).
    """
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 2
    except EventclipError as exc:  # --demo without the bundled files
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 1
    from eventclip.daemon import threads
    from eventclip.daemon.logs import setup_logging

    try:
        plan = threads.plan_threads(threads.allowed_cores(cfg.threads))
    except ConfigError as exc:
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 2
    if set_env:
        threads.apply_env(plan)  # before numba, ONNX Runtime or torch start their pools
    setup_logging(cfg.log_format, cfg.log_level)
    on_labels = None
    if args.demo:
        on_labels = _demo_printer(cfg).run

    try:
        return run(cfg, on_labels, plan)
    except ConfigError as exc:
        log.error("%s", exc)
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 2
    except EventclipError as exc:
        log.error("%s", exc)
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``eventclipd`` program: :func:`main`, then leave the process at once.

    Why ``os._exit``: by then everything the daemon owes is delivered (``offline`` published and the
    socket closed with its linger, logs flushed, the notify socket closed). What remains is the
    interpreter's teardown: joining library worker threads that are not daemon threads (RAW decode
    workers, ONNX Runtime and OpenMP pools) and freeing a GB of objects one by one, which took 5-7 s
    under CPU load and pushed the exit past systemd's stop timeout (issue 18: 9.7-12.1 s after SIGTERM).
    """
    rc = main(set_env=True)
    _deliver_queued_messages()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    logging.shutdown()
    os._exit(rc)


def _deliver_queued_messages(timeout_s: float = 1.0) -> None:
    """Let ZeroMQ send what closed sockets still queue (``offline``, the last stats) before the process ends.

    A closed socket's messages go out from ZeroMQ's I/O thread for up to its linger (0.5 s for the
    publisher); terminating the context waits for exactly that. It is done in a thread and waited
    for at most ``timeout_s``, since a socket some other thread has not closed would make it wait forever.
    """
    import zmq

    done = threading.Thread(target=zmq.Context.instance().term, name="eventclipd-zmq-term", daemon=True)
    done.start()
    done.join(timeout_s)


if __name__ == "__main__":
    entry()
