"""Sources of events: live cameras, files and video, behind one interface (see base)."""

from eventclip.sensors._backoff import Backoff
from eventclip.sensors.base import Source, SourceConfig, create, register, source_class
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError, SensorError

__all__ = [
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
