"""STAND-IN control of the virtual cameras behind the stand-in metavision_hal (tests only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from metavision_sdk_base import EventCD, EventExtTrigger


@dataclass
class VirtualCamera:
    """A camera that emits ``sessions[k]`` (EventCD arrays, sensor µs from 0) on its k-th opening (cycling).

    ``lost_after_us``: the session ends at that sensor time as if unplugged (``lost_by`` 'raise':
    RuntimeError during iteration; 'stop': the iteration just ends). ``triggers`` per session.
    """

    serial: str
    width: int
    height: int
    sessions: list[np.ndarray]
    triggers: list[np.ndarray] = field(default_factory=list)
    lost_by: str = "raise"
    facilities: tuple[str, ...] = ("biases", "roi", "erc", "antiflicker", "trail", "trigger_in")
    opened: int = 0
    applied: dict = field(default_factory=dict)

    def session(self) -> tuple[np.ndarray, np.ndarray]:
        k = (self.opened - 1) % len(self.sessions)
        events = self.sessions[k].astype(EventCD)
        triggers = self.triggers[k] if k < len(self.triggers) else np.zeros(0, EventExtTrigger)
        return events, triggers.astype(EventExtTrigger)


PLUGGED: dict[str, VirtualCamera] = {}


def plug(camera: VirtualCamera) -> None:
    PLUGGED[camera.serial] = camera


def unplug(serial: str) -> None:
    PLUGGED.pop(serial, None)


def reset() -> None:
    PLUGGED.clear()
