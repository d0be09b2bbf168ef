"""``eventclipd``: the streaming inference daemon (console script entry :func:`main`).

Start-up order matters for systemd: the model (and any TensorRT engine) is loaded first, with
``EXTEND_TIMEOUT_USEC`` keep-alives while it takes long; then the sensor is opened and the socket
bound; only then ``READY=1``. Exit status: 0 after a clean stop or the end of a file, 1 after a
runtime failure (sensor, corrupt file, model), 2 for a bad configuration or command line.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from eventclip.daemon.config import DaemonConfig, load_config
from eventclip.errors import ConfigError, EventclipError

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
    p.add_argument("--sensor", choices=["prophesee", "inivation", "replay", "video"])
    p.add_argument("--input", type=Path, help="file to replay (sensor replay) or video file (sensor video)")
    p.add_argument("--speed", type=float, help="replay speed factor; 0 = as fast as possible (default 1.0)")
    p.add_argument("--sensor-id", help="name used in every message (default: the source's id)")
    p.add_argument("--prompts", type=Path, help="prompts YAML (classes, templates, anomaly set)")
    p.add_argument("--model", type=Path, help="model package folder, `default` or a pulled name (`eventclip models "
                   "list`); default: the bundled model")
    p.add_argument("--backend", choices=["auto", "tensorrt", "onnxruntime", "torch"])
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
    p.add_argument("--wait-for-subscribers", type=int, help="hold the stream until N subscriptions arrived")
    p.add_argument("--log-format", choices=["json", "text"])
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


_FLAG_FIELDS = (
    "sensor", "input", "speed", "sensor_id", "prompts", "model", "backend", "publish", "allow_remote",
    "topic_prefix", "encoding", "window_us", "top_k", "batch_size", "drop_policy", "metrics_port", "http",
    "wait_for_subscribers", "log_format", "log_level",
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


def source_config(cfg: DaemonConfig) -> dict[str, Any]:
    """The sensor's own config (see :mod:`eventclip.sensors`) from the daemon's fields."""
    out: dict[str, Any] = {"kind": cfg.sensor}
    if cfg.sensor == "replay":
        out.update(path=cfg.input, realtime=cfg.speed > 0, speed=cfg.speed or 1.0)
    elif cfg.sensor == "video":
        out.update(path=cfg.input)
    out.update(cfg.sensor_options)
    return out


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


def run(cfg: DaemonConfig, on_labels: Any = None) -> int:
    """Run the daemon until the stream ends or a signal stops it; return the exit status.

    ``on_labels``, when given, is started as a thread with the bound endpoint (``--demo``'s printer).
    """
    from eventclip import sensors
    from eventclip.daemon.engine import load_engine, make_windower
    from eventclip.daemon.metrics import Metrics, serve_prometheus
    from eventclip.daemon.notify import Notifier
    from eventclip.daemon.pipeline import Pipeline
    from eventclip.daemon.publish import Publisher

    stop_requested = threading.Event()
    running: list[Pipeline] = []

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

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    notifier = Notifier()
    notifier.status("loading model")
    engine = load_engine(cfg, notifier)
    publisher = Publisher(cfg.publish, cfg.sensor_id or cfg.sensor, cfg.topic_prefix, cfg.encoding, cfg.send_hwm,
                          cfg.curve)
    try:
        source = sensors.create(source_config(cfg), on_status=SensorStatus(publisher))
        source.open()
        engine.warm_up(source.geometry)
        live, stop_http = _live_page(cfg, engine, publisher)
    except BaseException:
        publisher.close()
        raise
    publisher.sensor_id = cfg.sensor_id or source.sensor_id or source.name
    log.info("publishing on %s", publisher.endpoint)
    printer = None
    if on_labels is not None:
        printer = threading.Thread(target=on_labels, args=(publisher.endpoint, cfg.topic_prefix), daemon=True)
        printer.start()
    if cfg.wait_for_subscribers and not publisher.wait_for_subscribers(cfg.wait_for_subscribers, cfg.wait_timeout_s):
        log.warning("only %d of %d subscriptions after %.1f s; starting anyway",
                    publisher.subscriber_count, cfg.wait_for_subscribers, cfg.wait_timeout_s)
    metrics = Metrics()
    window_us = cfg.window_us or engine.window_us
    pipeline = Pipeline(source, make_windower(window_us), engine, publisher, cfg, notifier, metrics, live=live)

    running.append(pipeline)
    stop_metrics = None
    try:
        if cfg.metrics_port:
            stop_metrics = serve_prometheus(cfg.metrics_port, cfg.metrics_addr, lambda: pipeline.last_stats)
        if stop_requested.is_set():
            log.info("stopped before the stream started")
            return 0
        pipeline.start()
        notifier.ready(f"streaming {source.name}: {window_us} µs windows, backend {engine.backend_name}")
        log.info("ready: %s, %d µs windows, backend %s, publishing on %s",
                 source.name, window_us, engine.backend_name, publisher.endpoint)
        rc = pipeline.wait()
    finally:
        source.close()
        if stop_metrics is not None:
            stop_metrics()
        if stop_http is not None:
            stop_http()
        publisher.close()
        notifier.close()
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
    if cfg.input == data.sample_recording_path():
        try:
            truth = Truth(data.sample_labels_path())
        except (EventclipError, OSError, ValueError, KeyError) as exc:
            log.warning("the sample's labels cannot be read (%s); printing predictions only", exc)
    bundled = cfg.model is None or cfg.model == data.default_model_path()
    model = f"the bundled default model ({cfg.prompts.name})" if bundled else str(cfg.model)
    return DemoPrinter(sys.stdout, truth, model, cfg.speed)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: parse, configure logging, run; map errors to exit statuses 2 and 1."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 2
    except EventclipError as exc:  # --demo without the bundled files
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 1
    from eventclip.daemon.logs import setup_logging

    setup_logging(cfg.log_format, cfg.log_level)
    on_labels = None
    if args.demo:
        on_labels = _demo_printer(cfg).run

    try:
        return run(cfg, on_labels)
    except ConfigError as exc:
        log.error("%s", exc)
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 2
    except EventclipError as exc:
        log.error("%s", exc)
        print(f"eventclipd: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
