"""STAND-IN for the neuromorphic-drivers package (tests only; see tests/standin/README.md).

Reproduces the surface eventclip calls, from the package's README and python sources
(``neuromorphic_drivers/__init__.py``, ``device.py``, ``packet.py``): ``list_devices()`` ->
``ListedDevice(name, connection, address, serial, error)``; ``open(serial=...)`` -> a device with
``serial()``, ``properties()`` (``width``, ``height``), ``close()``, iterating ``(status, packet)``
where ``packet.polarity_events`` has dtype (t u8, x u2, y u2, on ?), ``packet.trigger_events``
(t u8, id u1, rising ?) and ``packet.polarity_events_overflow_indices``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

POLARITY = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
TRIGGER = np.dtype([("t", "<u8"), ("id", "u1"), ("rising", "?")])


@dataclasses.dataclass
class ListedDevice:
    name: str
    connection: str
    address: str
    serial: str | None
    error: str | None


@dataclasses.dataclass
class Properties:
    width: int
    height: int


class Evt3Packet:
    def __init__(self, polarity_events, trigger_events=None, overflow=None) -> None:
        self.polarity_events = polarity_events
        self.trigger_events = trigger_events
        self.polarity_events_overflow_indices = overflow
        self.trigger_events_overflow_indices = None


PLUGGED: dict[str, list[Evt3Packet]] = {}
"""Test control (not package API): serial -> the packets the camera delivers before it is unplugged."""


def list_devices() -> list[ListedDevice]:
    return [ListedDevice("prophesee_evk4", "usb", "", serial, None) for serial in PLUGGED]


class Device:
    def __init__(self, serial: str) -> None:
        self._serial = serial
        self._packets = list(PLUGGED[serial])
        self.closed = False

    def serial(self) -> str:
        return self._serial

    def properties(self) -> Properties:
        return Properties(1280, 720)

    def close(self) -> None:
        self.closed = True

    def __iter__(self):
        return self

    def __next__(self):
        if self._packets:
            return (None, self._packets.pop(0))
        PLUGGED.pop(self._serial, None)
        raise RuntimeError("device disconnected (LIBUSB_ERROR_NO_DEVICE)")


def open(serial: str | None = None, configuration=None, iterator_timeout=None, **kwargs) -> Device:
    if serial is None:
        if not PLUGGED:
            raise RuntimeError("no device found")
        serial = next(iter(PLUGGED))
    if serial not in PLUGGED:
        raise RuntimeError(f"serial {serial} not found")
    return Device(serial)
