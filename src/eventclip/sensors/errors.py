"""Typed errors of live sources: each names the camera, backend or config field and says what to do."""

from __future__ import annotations

from eventclip.errors import EventclipError


class SensorError(EventclipError):
    """A camera or stream could not be used; the message says which and what to do."""


class VideoError(SensorError):
    """A video file cannot be opened or decoded, or a frame has the wrong shape."""


class DeviceNotFoundError(SensorError):
    """No camera matches the request; the message lists the serials that were found."""

    def __init__(self, backend: str, wanted: str | None, found: list[str]) -> None:
        self.backend = backend
        self.wanted = wanted
        self.found = list(found)
        seen = ", ".join(found) if found else "none"
        what = f"no camera with serial {wanted!r}" if wanted else "no camera connected"
        super().__init__(
            f"{backend}: {what}; serials found: {seen}. "
            "Check the cable and the 'serial' field of the sensor config (eventclip sensors list shows cameras)."
        )


class DeviceLostError(SensorError):
    """A connected camera or stream stopped delivering (unplugged, server gone); the source reconnects."""
