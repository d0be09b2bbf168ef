"""The root of eventclip's typed errors, so callers and the CLI can catch them as one family."""

from __future__ import annotations


class EventclipError(Exception):
    """Base class for every error eventclip raises on purpose. The message says what to do."""


class ConfigError(EventclipError, ValueError):
    """A configuration or prompts file is invalid; the message names the file, line and field."""
