"""What eventclipd checks before it loads the model: every setting that can be checked without it.

Why: loading a model takes 6-43 s (more for a TensorRT build); a missing prompts or input file, a
port in use or a corrupt recording used to surface only after that. Each problem is a
:class:`~eventclip.errors.ConfigError` naming the setting (exit status 2), except a recording that
is there but unreadable, which keeps its own error (exit status 1, as any corrupt file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from eventclip.daemon.config import DaemonConfig
from eventclip.daemon.metrics import serve_prometheus
from eventclip.errors import ConfigError
from eventclip.heads.prompts import load_prompts
from eventclip.io.errors import check_event_file
from eventclip.model.hub import resolve_model


def check_files(cfg: DaemonConfig) -> None:
    """The prompts file parses and validates, the model resolves (a folder, ``default`` or a pulled
    name) and the source's file exists."""
    load_prompts(cfg.prompts)  # PromptsError is a ConfigError naming file:line: field
    try:
        resolve_model(cfg.model)
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from None
    path = getattr(cfg.source, "path", None)  # the sources that read a file have a 'path'
    if path is not None:
        try:
            check_event_file(path)
        except OSError as exc:
            raise ConfigError(f"source.path (--input): {exc}") from None


def serve_metrics(cfg: DaemonConfig, snapshot: Callable[[], dict]) -> Callable[[], None] | None:
    """Start the Prometheus endpoint when ``metrics_port`` is set; a port that cannot be bound is a ConfigError."""
    if not cfg.metrics_port:
        return None

    try:
        return serve_prometheus(cfg.metrics_port, cfg.metrics_addr, snapshot)
    except OSError as exc:
        raise ConfigError(f"metrics_port: cannot serve Prometheus metrics on {cfg.metrics_addr}:{cfg.metrics_port} "
                          f"({exc.strerror or exc}); choose a free port or stop what uses it") from None


class StartUp(threading.Thread):
    """Runs the slow part of start-up (``work``) off the main thread, so that a SIGTERM meanwhile is
    answered at once instead of after the model has loaded; :meth:`wait` returns its result or raises
    its error, or returns None when ``stop`` is set first (the thread is then abandoned: a daemon thread)."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(name="eventclipd-startup", daemon=True)
        self._work = work
        self._result: object = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self._work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by wait()
            self._error = exc

    def wait(self, stop: threading.Event, poll_s: float = 0.05) -> object | None:
        self.start()
        while self.is_alive():
            if stop.is_set():
                return None
            self.join(poll_s)
        if self._error is not None:
            raise self._error
        return self._result
