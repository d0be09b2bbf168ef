"""The one small interface behind every source of events: live cameras, files, video.

A source is selected by the ``kind`` field of its pydantic config. Each kind lives in its own
module (``sensors/<kind>.py``) and registers itself with ``@SENSORS.register(...)`` (see
:mod:`eventclip.plugins`), declaring its config, why it is unavailable here, and its capabilities
(``live``: a camera whose pace is the world's, as opposed to a file). Sensor modules import their
SDK inside functions, so a missing SDK only matters for the kind that needs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from eventclip.errors import ConfigError
from eventclip.events import EventChunk, Geometry
from eventclip.plugins import Registry

Clock = Literal["sensor", "host"]
"""``sensor``: event ``t`` is the camera's own µs counter; ``host``: µs of the host's monotonic clock."""

StatusCallback = Callable[[str, str], None]
"""Called as ``on_status(state, detail)`` with state one of online, offline, reconnecting, error."""


class SourceConfig(BaseModel):
    """Base of every source's config; subclasses narrow ``kind`` to a Literal naming the source."""

    model_config = ConfigDict(extra="forbid")
    kind: str


class Source(ABC):
    """A stream of :class:`EventChunk` in eventclip's event dtype.

    Use as ``with create(cfg) as src: for chunk in src: ...``. ``geometry``, ``sensor_id`` and
    ``clock`` are valid after :meth:`open`. A discontinuity (camera unplugged and back, replay
    looping) is reported as a chunk whose ``meta`` holds ``{"gap": True, ...}`` and never papered over.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]
    paced: bool = True
    """True when chunks arrive at the pace of the world (a camera, a paced replay): whoever consumes
    them must never make the source wait. False for a file read as fast as possible, which may wait."""

    def __init__(self, config: SourceConfig, on_status: StatusCallback | None = None) -> None:
        self.config = config
        self.on_status = on_status or (lambda state, detail: None)
        self.geometry: Geometry | None = None
        self.sensor_id: str = ""
        self.clock: Clock = "sensor"

    @property
    def name(self) -> str:
        """Human-readable name: kind and sensor id."""
        return f"{self.kind}:{self.sensor_id}" if self.sensor_id else self.kind

    @abstractmethod
    def open(self) -> None:
        """Connect to the camera or file; sets geometry, sensor_id and clock."""

    @abstractmethod
    def __iter__(self) -> Iterator[EventChunk]:
        """Yield chunks until the stream ends (files) or :meth:`close` is called (cameras)."""

    @abstractmethod
    def close(self) -> None:
        """Release the camera or file. Safe to call twice and from another thread."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SENSORS: Registry[type[Source]] = Registry("sensor", "eventclip.sensors")
"""Every source kind: one module in ``eventclip.sensors`` each (see :mod:`eventclip.plugins`)."""


def source_class(kind: str) -> type[Source]:
    """The Source class for ``kind``; ConfigError naming the kinds when unknown."""
    return SENSORS[kind]


def create(config: SourceConfig | dict[str, Any], on_status: StatusCallback | None = None) -> Source:
    """Build the source a config (model or plain dict with ``kind``) describes."""
    if isinstance(config, dict):
        kind = config.get("kind")
        if not kind:
            raise ConfigError("sensor config needs a 'kind' field")
        cls = source_class(kind)
        config = cls.Config.model_validate(config)
    else:
        cls = source_class(config.kind)
    return cls(config, on_status=on_status)
