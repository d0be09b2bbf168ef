"""What each live backend can see: the data behind ``eventclip sensors list``.

Why one place: users ask "is my camera seen, and if not, which piece is missing?". Every kind
answers with the cameras it found or the reason it cannot look (a missing SDK or package, named
with how to install it), so a missing backend never hides a working one.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

from eventclip.errors import EventclipError
from eventclip.sensors.base import SENSORS


@dataclass
class BackendReport:
    """One backend: whether it can look for cameras, why not, and what it found."""

    kind: str
    available: bool
    reason: str = ""
    devices: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def discover() -> list[BackendReport]:
    """Ask every sensor kind whose module has a ``list_devices()`` for its cameras; never raises for a
    missing backend: its registry availability reason (or the error listing raised) is the report."""
    reports = []
    for plugin in SENSORS.plugins():
        list_devices = getattr(importlib.import_module(plugin.module), "list_devices", None)
        if list_devices is None:
            continue  # a file source (replay): nothing to discover
        reason = plugin.unavailable()
        if reason:
            reports.append(BackendReport(plugin.kind, False, reason))
            continue
        try:
            devices = list_devices()
        except (EventclipError, ImportError, RuntimeError) as exc:
            reports.append(BackendReport(plugin.kind, False, str(exc)))
            continue
        empty = plugin.capabilities.get("no_devices", "no cameras found")
        reports.append(BackendReport(plugin.kind, True, "" if devices else empty, devices))
    return reports
