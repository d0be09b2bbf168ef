"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from eventclip.errors import EventclipError


class MissingDependencyError(EventclipError, ImportError):
    """An optional package is not installed; the message names the pip extra that brings it."""


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise MissingDependencyError telling the user what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{module!r} is needed{what} but is not installed ({exc}). "
            f"Install it with: pip install 'eventclip[{extra}]'"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
