"""Typed errors for windows, frames and video conversion; each says what was wrong and what to do."""

from __future__ import annotations

from eventclip.errors import EventclipError


class FramesError(EventclipError, ValueError):
    """Base class for errors from :mod:`eventclip.frames`."""


class WindowConfigError(FramesError):
    """A windowing parameter is invalid (zero/negative length, stride longer than the window, ...)."""


class EventOutsideGeometryError(FramesError):
    """An event's x/y lies outside the sensor geometry given for accumulation.

    ``index`` is the position of the first offending event in the array passed in.
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class EventOrderError(FramesError):
    """Event timestamps go backwards; windows need time-ordered events (sort them or fix the reader)."""
