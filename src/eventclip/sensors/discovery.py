"""What each live backend can see: the data behind ``eventclip sensors list``.

Why one place: users ask "is my camera seen, and if not, which piece is missing?". Every kind
answers with the cameras it found or the reason it cannot look (a missing SDK or package, named
with how to install it), so a missing backend never hides a working one.
"""

from __future__ import annotations

import glob
import importlib
from dataclasses import asdict, dataclass, field

from eventclip.errors import EventclipError


@dataclass
class BackendReport:
    """One backend: whether it can look for cameras, why not, and what it found."""

    kind: str
    available: bool
    reason: str = ""
    devices: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _webcams() -> list[dict[str, str]]:
    """Video4Linux devices (Linux); OpenCV itself cannot enumerate cameras."""
    return [{"serial": path, "model": "V4L2 device", "backend": "opencv"} for path in sorted(glob.glob("/dev/video*"))]


def discover() -> list[BackendReport]:
    """Ask every live backend for its cameras; never raises for a missing backend."""
    reports = []
    for kind in ("prophesee", "inivation"):
        try:
            module = importlib.import_module(f"eventclip.sensors.{kind}")
            devices = module.list_devices()
        except (EventclipError, ImportError, RuntimeError) as exc:
            reports.append(BackendReport(kind, False, str(exc)))
            continue
        reports.append(BackendReport(kind, True, "" if devices else "no cameras found", devices))
    try:
        importlib.import_module("cv2")
    except ImportError:
        reports.append(BackendReport("video", False, "OpenCV is not installed: pip install 'eventclip[video]'"))
    else:
        cams = _webcams()
        reports.append(BackendReport("video", True, "" if cams else "no /dev/video* webcams (video files work)", cams))
    return reports
