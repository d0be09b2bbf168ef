"""Typed errors of the model layer, so callers can tell a bad checkpoint from a bad package."""

from __future__ import annotations

from eventclip.errors import ConfigError, EventclipError


class ArchitectureError(ConfigError):
    """The requested CLIP architecture is unknown or not a ViT we can build; names the architecture."""


class CheckpointError(EventclipError):
    """A checkpoint cannot be read safely or does not fit the model; names the file and key."""


class PackageError(EventclipError):
    """A model package folder is incomplete or corrupt; names the file that is missing or altered."""
