"""STAND-IN for metavision_hal (tests only; see tests/standin/README.md).

Reproduces the HAL Python surface eventclip calls: DeviceDiscovery, Device and its ``get_i_*``
facilities, with the nested enums/classes the pybind11 bindings define on each facility class.
Behind it are the virtual cameras of :mod:`metavision_hal.standin`.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from metavision_sdk_base import EventCD, EventExtTrigger

from metavision_hal import standin


def _id(serial: str) -> str:
    return f"Prophesee:hal_plugin_gen41:{serial}"


class I_LL_Biases:
    def __init__(self, applied: dict) -> None:
        self._biases = applied.setdefault(
            "biases",
            {"bias_diff": 0, "bias_diff_off": 0, "bias_diff_on": 0, "bias_fo": 0, "bias_hpf": 0, "bias_refr": 0},
        )

    def get_all_biases(self) -> dict:
        return dict(self._biases)

    def get(self, bias_name: str) -> int:
        return self._biases[bias_name]

    def set(self, bias_name: str, bias_value: int) -> bool:
        if bias_name not in self._biases or not -128 <= bias_value <= 255:
            return False
        self._biases[bias_name] = bias_value
        return True


class I_ROI:
    class Mode(Enum):
        ROI = 0
        RONI = 1

    class Window:
        def __init__(self, x: int, y: int, width: int, height: int) -> None:
            self.x, self.y, self.width, self.height = x, y, width, height

    def __init__(self, applied: dict) -> None:
        self._applied = applied

    def set_mode(self, mode: I_ROI.Mode) -> bool:
        self._applied["roi_mode"] = mode
        return True

    def set_window(self, roi: I_ROI.Window) -> bool:
        return self.set_windows([roi])

    def set_windows(self, roi_list: list) -> bool:
        self._applied["roi"] = [(w.x, w.y, w.width, w.height) for w in roi_list]
        return True

    def get_max_supported_windows_count(self) -> int:
        return 4

    def enable(self, enable: bool) -> bool:
        self._applied["roi_enabled"] = enable
        return True


class _Toggle:
    def __init__(self, applied: dict, key: str) -> None:
        self._applied, self._key = applied, key

    def enable(self, b: bool) -> bool:
        self._applied[f"{self._key}_enabled"] = b
        return True

    def is_enabled(self) -> bool:
        return bool(self._applied.get(f"{self._key}_enabled", False))


class I_ErcModule(_Toggle):
    def __init__(self, applied: dict) -> None:
        super().__init__(applied, "erc")

    def set_cd_event_rate(self, events_per_sec: int) -> bool:
        if events_per_sec > 1_000_000_000:
            return False
        self._applied["erc_rate"] = events_per_sec
        return True

    def get_cd_event_rate(self) -> int:
        return self._applied.get("erc_rate", 20_000_000)


class I_AntiFlickerModule(_Toggle):
    class AntiFlickerMode(Enum):
        BAND_STOP = 0
        BAND_PASS = 1

    def __init__(self, applied: dict) -> None:
        super().__init__(applied, "afk")

    def set_frequency_band(self, min_freq: int, max_freq: int) -> bool:
        if not 50 <= min_freq <= max_freq <= 520:
            raise RuntimeError(f"frequency band [{min_freq}, {max_freq}] outside [50, 520] Hz")
        self._applied["afk_band"] = (min_freq, max_freq)
        return True

    def set_filtering_mode(self, mode: I_AntiFlickerModule.AntiFlickerMode) -> bool:
        self._applied["afk_mode"] = mode
        return True


class I_EventTrailFilterModule(_Toggle):
    class Type(Enum):
        TRAIL = 0
        STC_CUT_TRAIL = 1
        STC_KEEP_TRAIL = 2

    def __init__(self, applied: dict) -> None:
        super().__init__(applied, "trail")

    def set_type(self, type: I_EventTrailFilterModule.Type) -> bool:
        self._applied["trail_type"] = type
        return True

    def set_threshold(self, threshold: int) -> bool:
        self._applied["trail_threshold"] = threshold
        return True


class I_TriggerIn:
    class Channel(Enum):
        MAIN = 0
        AUX = 1
        LOOPBACK = 2

    def __init__(self, applied: dict) -> None:
        self._applied = applied

    def enable(self, channel: I_TriggerIn.Channel) -> bool:
        self._applied.setdefault("trigger_in", []).append(channel)
        return True

    def disable(self, channel: I_TriggerIn.Channel) -> bool:
        return True

    def is_enabled(self, channel: I_TriggerIn.Channel) -> bool:
        return channel in self._applied.get("trigger_in", [])


class I_HW_Identification:
    def __init__(self, serial: str) -> None:
        self._serial = serial

    def get_serial(self) -> str:
        return self._serial


class Device:
    """A HAL device; facilities the virtual camera lacks come back as None, as on real sensors."""

    def __init__(self, camera: standin.VirtualCamera) -> None:
        self._camera = camera
        camera.opened += 1
        self._events, self._triggers = camera.session()

    def _has(self, name: str, cls):
        return cls(self._camera.applied) if name in self._camera.facilities else None

    def get_i_ll_biases(self):
        return self._has("biases", I_LL_Biases)

    def get_i_roi(self):
        return self._has("roi", I_ROI)

    def get_i_erc_module(self):
        return self._has("erc", I_ErcModule)

    def get_i_antiflicker_module(self):
        return self._has("antiflicker", I_AntiFlickerModule)

    def get_i_event_trail_filter_module(self):
        return self._has("trail", I_EventTrailFilterModule)

    def get_i_trigger_in(self):
        return self._has("trigger_in", I_TriggerIn)

    def get_i_hw_identification(self):
        return I_HW_Identification(self._camera.serial)

    def standin_slices(self, delta_t: int):
        """(t_end, events, triggers) per ``delta_t`` from sensor time 0; then the camera is 'unplugged'."""
        events, triggers = self._events, self._triggers
        last = int(events["t"][-1]) if len(events) else 0
        t = 0
        while t <= last:
            a, b = np.searchsorted(events["t"], [t, t + delta_t])
            c, d = np.searchsorted(triggers["t"], [t, t + delta_t])
            yield t + delta_t, events[a:b], triggers[c:d]
            t += delta_t
        standin.unplug(self._camera.serial)
        if self._camera.lost_by == "raise":
            raise RuntimeError(f"Camera {self._camera.serial} disconnected")


class DeviceDiscovery:
    @staticmethod
    def list() -> list[str]:
        return [_id(s) for s in standin.PLUGGED]

    @staticmethod
    def open(serial: str, config=None):
        for s, camera in standin.PLUGGED.items():
            if serial in ("", s, _id(s)):
                return Device(camera)
        return None


__all__ = ["Device", "DeviceDiscovery", "EventCD", "EventExtTrigger"]
