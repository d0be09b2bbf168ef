"""Sources of events: live cameras, files and video, behind one interface (see base)."""

from eventclip.sensors._backoff import Backoff
from eventclip.sensors.base import TRIGGER_DTYPE, Source, SourceConfig, create, register, source_class
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError, SensorError

__all__ = [
    "TRIGGER_DTYPE",
    "Backoff",
    "DeviceLostError",
    "DeviceNotFoundError",
    "SensorError",
    "Source",
    "SourceConfig",
    "create",
    "register",
    "source_class",
]
