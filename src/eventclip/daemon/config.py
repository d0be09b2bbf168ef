"""eventclipd's configuration: one pydantic model, read from YAML, overridden by command-line flags.

Why one validated model: the daemon runs unattended for weeks, so a typo in the YAML must stop it
at start-up with the field's name (exit status 2), never be ignored. Flags win over the file so a
systemd drop-in or a shell can change one value without copying the whole file.

``source:`` and ``backend:`` embed the sensor's and the backend's own configs, chosen by ``kind``
from the plugin registries (:mod:`eventclip.plugins`), so a new sensor or backend module is
configurable here without touching this file.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eventclip.data import default_prompts_path
from eventclip.errors import ConfigError
from eventclip.runtime.base import BACKENDS, AutoConfig
from eventclip.sensors.base import SENSORS

DropPolicy = Literal["drop_oldest", "keep_every_nth"]
"""What the window queue does when inference lags: evict the oldest window, or admit only every Nth."""


class CurveConfig(BaseModel):
    """ZeroMQ CURVE encryption + authentication; key files as written by ``zmq.auth.create_certificates``.

    ``server_secret_key`` is the daemon's ``.key_secret`` file; ``authorized_clients`` a folder of
    clients' ``.key`` public certificates (only those may subscribe).
    """

    model_config = ConfigDict(extra="forbid")
    server_secret_key: Path
    authorized_clients: Path


SourceSettings = SENSORS.config_union()
"""The sensor's own config (eventclip.sensors), chosen by ``kind``."""
BackendSettings = BACKENDS.config_union(AutoConfig)
"""The backend's own config (eventclip.runtime), chosen by ``kind``; ``auto`` picks the fastest."""

MOVED_TO_SOURCE = ("sensor", "sensor_options", "input", "speed")
"""Top-level keys of the configs before ``source:``; a file still using them gets the new shape spelt out."""


class DaemonConfig(BaseModel):
    """Every setting of eventclipd. Times in µs unless the name says otherwise."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSettings
    """The sensor's own config (docs/sensors.md), e.g. ``{kind: replay, path: rec.raw, loop: true}`` or
    ``{kind: prophesee, serial: "00050423"}``; ``--sensor``, ``--input`` and ``--speed`` set its
    ``kind``, ``path`` and ``speed``/``realtime``."""
    sensor_id: str | None = None
    """Name used in every message; defaults to the source's own id."""

    prompts: Path | None = None
    """Prompts YAML; may be left out only with the bundled model, whose own prompts are then used."""
    model: Path | None = None
    """Model package folder or model name (``default``, or one pulled with ``eventclip models pull``);
    default: the bundled default model."""
    backend: BackendSettings = Field(default_factory=AutoConfig)
    """The backend's own config (docs/deploy.md), e.g. ``{kind: onnxruntime, precision: int8}``; a bare
    name (``backend: torch``) means that backend with its defaults."""

    frames: Literal["auto", "numpy", "torch"] = "auto"
    """Where frames are built: ``numpy`` (numba on the CPU), ``torch`` (on the encoder's device, so
    a CUDA backend gets device tensors with no host round trip); ``auto`` = torch when the backend
    runs on CUDA, else numpy."""
    head: str = "zero_shot"
    """``zero_shot`` (the prompts' classes) or a few-shot head saved in the package (``probe``, ``tip``)."""
    anomaly_ema: float | None = Field(default=None, gt=0, le=1)
    """Smooth the anomaly score over windows with this EMA factor (None: raw per-window score)."""

    window_us: int | None = Field(default=None, gt=0)
    """Window length in µs; default: the model card's representation.window_us."""
    top_k: int | None = Field(default=None, gt=0)
    """Labels per window; default: the prompts file's ``top_k``."""
    batch_size: int = Field(default=8, gt=0)
    """Largest micro-batch handed to the encoder (windows waiting are batched, never waited for)."""

    window_queue: int = Field(default=16, gt=0)
    """Windows waiting for inference before the drop policy applies."""
    drop_policy: DropPolicy = "drop_oldest"
    keep_every_n: int = Field(default=2, gt=1)
    """With ``keep_every_nth``: while the queue is half full or more, admit only every Nth window."""
    max_pending_events: int = Field(default=16_000_000, gt=0)
    """Events the reader's queue may hold (16 bytes each: 256 MiB by default), the memory bound of the
    backlog. Past it a live source's oldest queued events are dropped (counted, ``reader_overflow``);
    an unpaced replay waits instead."""
    max_age_ms: float | None = Field(default=None, gt=0)
    """Freshness budget (ms): how old a window may be, from its close (the reader handing over the
    chunk that completed it), when it reaches the encoder; older windows, and chunks already older
    than this when windowing takes them, are dropped and counted (``stale``). Default: see
    :func:`freshness_budget_ms`. Not applied to an unpaced replay (``speed: 0``), which is a batch job."""
    threads: int | None = Field(default=None, gt=0)
    """Cores the daemon may use; default (and upper bound): the CPU affinity mask and cgroup quota
    (see :mod:`eventclip.daemon.threads`)."""

    publish: str = "tcp://127.0.0.1:5556"
    allow_remote: bool = False
    """Binding to a non-loopback address needs this set, so nothing is exposed by accident."""
    topic_prefix: str = "eventclip"
    encoding: Literal["json", "msgpack"] = "json"
    send_hwm: int = Field(default=1000, gt=0)
    """ZeroMQ send high-water mark (messages per subscriber); beyond it messages drop and are counted."""
    curve: CurveConfig | None = None
    http: str | None = None
    """``HOST:PORT`` of the live page (docs/daemon.md, "Live page"); off when unset. Loopback unless
    ``allow_remote``, like ``publish``. Needs the ``http`` extra."""

    wait_for_subscribers: int = Field(default=0, ge=0)
    """Hold the stream (up to ``wait_timeout_s``) until this many subscriptions arrived: recorders, tests."""
    wait_timeout_s: float = Field(default=10.0, gt=0)

    stats_interval_s: float = Field(default=1.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_addr: str = "127.0.0.1"
    """Address of the Prometheus endpoint; a non-loopback one needs ``allow_remote``, like ``publish``."""
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = Field(default=3.0, gt=0)
    """Time allowed to drain in-flight windows on SIGTERM before leaving. The daemon promises to exit
    within ``SIGTERM_EXIT_S`` of SIGTERM with this at 3.5 s or less (the rest: stopping the stages,
    ``offline``)."""

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v.endswith("/"):
            raise ValueError("must be non-empty and not end with '/'")
        return v

    @field_validator("http")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None:
            parse_http_address(v)
        return v

    @model_validator(mode="before")
    @classmethod
    def _bundled_prompts(cls, data: Any) -> Any:
        """The bundled model brings its own prompts: use them when none are given (as ``--demo`` does)."""
        if isinstance(data, dict) and data.get("prompts") is None and data.get("head", "zero_shot") == "zero_shot" \
                and str(data.get("model") or "default") == "default":
            data = {**data, "prompts": default_prompts_path()}
        return data

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        """``backend: NAME`` is short for ``backend: {kind: NAME}``; the keys before ``source:`` get the
        new shape spelt out instead of a bare "extra inputs are not permitted"."""
        if not isinstance(data, dict):
            return data
        old = [key for key in MOVED_TO_SOURCE if key in data]
        if old:
            raise ValueError(
                f"{', '.join(old)}: the sensor settings moved into 'source:', the sensor's own config, e.g. "
                "source: {kind: replay, path: rec.raw, speed: 1.0, loop: true} or "
                "source: {kind: prophesee, serial: '00050423'} (docs/daemon.md); on the command line "
                "--sensor, --input and --speed still set them")
        if isinstance(data.get("backend"), str):
            data = {**data, "backend": {"kind": data["backend"]}}
        return data

    @model_validator(mode="after")
    def _checks(self) -> DaemonConfig:
        if self.prompts is None:
            raise ValueError(f"model {str(self.model)!r} needs prompts: pass --prompts FILE (or 'prompts:' in the "
                             "config file); only the bundled model has prompts of its own")
        if not self.allow_remote and not is_loopback_endpoint(self.publish):
            raise ValueError(
                f"publish endpoint {self.publish!r} is not loopback; set allow_remote: true to expose it"
            )
        if self.metrics_port and not self.allow_remote and not is_loopback_host(self.metrics_addr):
            raise ValueError(
                f"metrics_addr {self.metrics_addr!r} is not loopback; set allow_remote: true to expose the metrics"
            )
        if self.http is not None and not self.allow_remote and not is_loopback_host(parse_http_address(self.http)[0]):
            raise ValueError(f"http address {self.http!r} is not loopback; set allow_remote: true to expose it")
        return self


SIGTERM_EXIT_S = 5.0
"""eventclipd exits within this many seconds of SIGTERM, at any point (start-up included), with the default
``shutdown_timeout_s``; systemd's ``TimeoutStopSec`` in the shipped unit sits above it."""

FRESHNESS_WINDOWS = 2
"""Default freshness budget, in window lengths: a result older than two windows describes a moment
that two newer windows have already replaced."""
FRESHNESS_FLOOR_MS = 200.0
"""Least default budget (ms): with short windows the encoder call and the scheduler's hiccups on a
shared CPU (p99 183-285 ms measured beside other jobs on 2 cores) dominate, not the window length."""


def freshness_budget_ms(cfg: DaemonConfig, window_us: int) -> float:
    """The freshness budget in ms: ``max_age_ms`` when set, else ``max(2 windows, 200 ms)``."""
    if cfg.max_age_ms is not None:
        return float(cfg.max_age_ms)
    return max(FRESHNESS_WINDOWS * window_us / 1000.0, FRESHNESS_FLOOR_MS)


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ``ipc://``/``inproc://`` and for ``tcp://`` on 127.0.0.0/8, ::1 or ``localhost``."""
    parsed = urlparse(endpoint)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    return parsed.scheme == "tcp" and is_loopback_host(parsed.hostname or "")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_http_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` / ``[::1]:8080`` / ``localhost:0`` -> (host, port); ValueError saying the form."""
    parsed = urlparse(f"//{text}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None or parsed.path or parsed.username:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks a free one)")
    return parsed.hostname, port


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def validate_config(data: dict[str, Any], origin: str) -> DaemonConfig:
    """Validate a merged mapping; raise ConfigError naming ``origin`` and each bad field."""
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid configuration ({origin}):\n" + "\n".join(lines)) from None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file into a mapping; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {p}{where} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of settings, got {type(data).__name__}")
    base = p.parent
    for key in ("prompts", "model"):
        value = data.get(key)
        if not isinstance(value, str) or os.path.isabs(value):
            continue
        if key == "model" and os.sep not in value and not (base / value).exists():
            continue  # a model name (`default`, a pulled one), resolved when the model loads
        data[key] = str(base / value)
    for key, registry in (("source", SENSORS), ("backend", BACKENDS)):
        section = data.get(key)
        if isinstance(section, dict) and section.get("kind") in registry:
            data[key] = _resolve_paths(section, registry.get(section["kind"]).config, base)
    return data


def _is_path_field(annotation: Any) -> bool:
    """True for ``Path`` and ``Path | None`` fields."""
    return annotation is Path or Path in get_args(annotation)


def _resolve_paths(section: dict[str, Any], model: type[BaseModel] | None, base: Path) -> dict[str, Any]:
    """``section`` with its relative file fields (those typed Path in ``model``) made relative to ``base``."""
    if model is None:
        return section
    out = dict(section)
    for name, info in model.model_fields.items():
        value = out.get(name)
        if isinstance(value, str) and not os.path.isabs(value) and _is_path_field(info.annotation):
            out[name] = str(base / value)
    return out


def apply_source_flags(data: dict[str, Any], sensor: str | None, input: Path | str | None,
                       speed: float | None) -> None:
    """Put ``--sensor``, ``--input`` and ``--speed`` into ``data["source"]`` (flags win over the file).

    A ``--sensor`` naming another kind than the file's starts a fresh source (the file's fields
    belong to its own kind). ``--input`` is the source's ``path``; ``--speed`` its ``speed``, 0
    meaning ``realtime: false`` (as fast as possible). A flag the kind has no field for is an error.
    """
    if sensor is None and input is None and speed is None:
        return
    source = dict(data.get("source") or {})
    if sensor is not None and source.get("kind") != sensor:
        source = {"kind": sensor}
    kind = source.get("kind")
    if kind is None:
        raise ConfigError("--input / --speed need a sensor: pass --sensor KIND (or 'source: {kind: ...}' in the "
                          f"config file); kinds: {', '.join(SENSORS.names())}")
    fields = SENSORS.get(kind).config.model_fields
    if input is not None:
        if "path" not in fields:
            raise ConfigError(f"--input: sensor {kind!r} reads no file (its fields: {', '.join(fields)})")
        source["path"] = input
    if speed is not None:
        if "speed" not in fields:
            raise ConfigError(f"--speed: sensor {kind!r} has no playback speed (its fields: {', '.join(fields)})")
        if speed < 0:
            raise ConfigError(f"--speed must be 0 (as fast as possible) or more, got {speed:g}")
        source.update(realtime=speed > 0, speed=speed or 1.0)
    data["source"] = source


def apply_backend_flag(data: dict[str, Any], backend: str | None) -> None:
    """Put ``--backend`` into ``data["backend"]``: the file's settings stay when it names the same kind."""
    if backend is None:
        return
    current = data.get("backend")
    kind = current.get("kind") if isinstance(current, dict) else current
    if kind != backend:
        data["backend"] = {"kind": backend}


def load_config(path: str | os.PathLike | None, overrides: dict[str, Any]) -> DaemonConfig:
    """The YAML file (optional) with ``overrides`` (flags that were given, not None) on top.

    ``overrides`` are keyed by field name, plus the flags that set parts of a section: ``sensor``,
    ``input`` and ``speed`` (into ``source``, see :func:`apply_source_flags`) and ``backend``.
    """
    data = read_yaml(path) if path is not None else {}
    flags = {k: v for k, v in overrides.items() if v is not None}
    if path is not None:
        old = [key for key in MOVED_TO_SOURCE if key in data]
        if old:
            validate_config(data, str(path))  # raises, spelling out the 'source:' shape
    try:
        apply_source_flags(data, flags.pop("sensor", None), flags.pop("input", None), flags.pop("speed", None))
        apply_backend_flag(data, flags.pop("backend", None))
    except ConfigError as exc:
        raise ConfigError(f"invalid configuration ({path} + command-line flags): {exc}" if path is not None
                          else f"invalid configuration (command-line flags): {exc}") from None
    data.update(flags)
    origin = f"{path} + command-line flags" if path is not None else "command-line flags"
    return validate_config(data, origin)
