"""STAND-IN for metavision_core.event_io (tests only; see tests/standin/README.md): EventsIterator."""

from __future__ import annotations

import numpy as np
from metavision_sdk_base import EventExtTrigger


class _Reader:
    def __init__(self) -> None:
        self.triggers: list[np.ndarray] = []

    def get_ext_trigger_events(self) -> np.ndarray:
        return np.concatenate(self.triggers) if self.triggers else np.zeros(0, EventExtTrigger)

    def clear_ext_trigger_events(self) -> None:
        self.triggers = []


class EventsIterator:
    def __init__(self, input_path, start_ts=0, mode="delta_t", delta_t=10000, n_events=10000, max_duration=None,
                 relative_timestamps=False, **kwargs):
        raise NotImplementedError("the stand-in EventsIterator reads devices only (from_device)")

    @classmethod
    def from_device(cls, device, start_ts=0, n_events=10000, delta_t=10000, mode="delta_t", max_duration=None,
                    relative_timestamps=False, **kwargs):
        it = cls.__new__(cls)
        it.device, it.delta_t, it.reader, it.current_time = device, delta_t, _Reader(), 0
        return it

    def get_size(self):
        return self.device._camera.height, self.device._camera.width

    def get_current_time(self) -> int:
        return self.current_time

    def get_ext_trigger_events(self) -> np.ndarray:
        return self.reader.get_ext_trigger_events().copy()

    def __iter__(self):
        for t_end, events, triggers in self.device.standin_slices(self.delta_t):
            if len(triggers):
                self.reader.triggers.append(triggers.copy())
            self.current_time = t_end  # like the real one: the end of the slice just served (µs)
            yield events
