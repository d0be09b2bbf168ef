"""Sources of events: live cameras, files and video, behind one interface (see base)."""

from eventclip.sensors._backoff import Backoff
from eventclip.sensors.base import SENSORS, Source, SourceConfig, create, source_class
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError, SensorError

__all__ = [
    "Backoff",
    "DeviceLostError",
    "DeviceNotFoundError",
    "SENSORS",
    "SensorError",
    "Source",
    "SourceConfig",
    "create",
    "source_class",
]
