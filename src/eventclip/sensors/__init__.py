"""Sources of events: live cameras, files and video, behind one interface (see base)."""

from eventclip.sensors.base import Source, SourceConfig, create, register, source_class

__all__ = ["Source", "SourceConfig", "create", "register", "source_class"]
