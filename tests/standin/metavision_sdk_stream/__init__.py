"""STAND-IN for metavision_sdk_stream (tests only; see tests/standin/README.md).

Camera / RValueCamera / SliceCondition / CameraStreamSlicer / Slice as the OpenEB bindings define
them. Like the real binding, ``Slice.events`` and ``Slice.triggers`` are views into a buffer the
slicer reuses: the stand-in overwrites it when the next slice is produced.
"""

from __future__ import annotations

import numpy as np
from metavision_hal import Device, DeviceDiscovery
from metavision_sdk_base import EventCD, EventExtTrigger


class CameraException(RuntimeError):
    pass


class RValueCamera:
    def __init__(self, camera: Camera) -> None:
        self.camera = camera


class Camera:
    def __init__(self, device: Device) -> None:
        self._device = device

    @staticmethod
    def from_first_available(config=None) -> Camera:
        device = DeviceDiscovery.open("")
        if device is None:
            raise CameraException("Camera not found. Check that a camera is plugged into your system and retry.")
        return Camera(device)

    @staticmethod
    def from_serial(serial: str, config=None) -> Camera:
        device = DeviceDiscovery.open(serial)
        if device is None:
            raise CameraException(f"Camera with serial {serial} not found.")
        return Camera(device)

    def get_device(self) -> Device:
        return self._device

    def width(self) -> int:
        return self._device._camera.width

    def height(self) -> int:
        return self._device._camera.height

    def move(self) -> RValueCamera:
        return RValueCamera(self)


class SliceCondition:
    def __init__(self) -> None:
        self.type, self.delta_ts, self.delta_n_events = "IDENTITY", 0, 0

    @staticmethod
    def make_n_us(delta_ts: int) -> SliceCondition:
        cond = SliceCondition()
        cond.type, cond.delta_ts = "N_US", delta_ts
        return cond


class Slice:
    def __init__(self, t: int, events: np.ndarray, triggers: np.ndarray) -> None:
        self.status = "MET_N_US"
        self.t = t
        self.n_events = len(events)
        self.events = events
        self.triggers = triggers


class CameraStreamSlicer:
    def __init__(self, rvalue_camera: RValueCamera, slice_condition: SliceCondition = None, max_queue_size: int = 5):
        if rvalue_camera.camera is None:
            raise RuntimeError("RValue Camera was already moved")
        self._camera, rvalue_camera.camera = rvalue_camera.camera, None
        self._condition = slice_condition or SliceCondition.make_n_us(1000)
        self._events_buf = np.zeros(1 << 16, dtype=EventCD)
        self._trig_buf = np.zeros(256, dtype=EventExtTrigger)

    def camera(self) -> Camera:
        return self._camera

    def __iter__(self):
        for t_end, events, triggers in self._camera._device.standin_slices(self._condition.delta_ts):
            n, m = len(events), len(triggers)
            self._events_buf[:n] = events
            self._trig_buf[:m] = triggers
            yield Slice(t_end, self._events_buf[:n], self._trig_buf[:m])
