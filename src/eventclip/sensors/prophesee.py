"""Prophesee cameras (EVK4, EVK3, IMX636/Gen4.1/GenX320 boards), live.

Three routes, picked by ``backend`` (``auto`` takes the first one installed, in this order):

- ``sdk5``: Metavision SDK 5 — ``metavision_sdk_stream.Camera`` + ``CameraStreamSlicer`` slicing
  by time (``slice_us``); ``Slice.events`` (EventCD) and ``Slice.triggers`` (EventExtTrigger);
- ``sdk4``: Metavision SDK 4 / OpenEB — ``metavision_hal.DeviceDiscovery`` +
  ``metavision_core.event_io.EventsIterator.from_device``;
- ``neuromorphic-drivers``: the registry package of that name (``pip install
  'eventclip[prophesee]'``), which reads an EVK4/EVK3 over USB without the SDK (aarch64 wheels,
  so a Jetson has a path too). Camera settings need one of the SDK routes.

The Metavision SDK is not on any package registry: get it from Prophesee's installer
(https://docs.prophesee.ai, "Installation") or build OpenEB (https://github.com/prophesee-ai/openeb)
with its Python bindings, so that ``metavision_sdk_stream`` (SDK 5) or ``metavision_core`` (SDK 4)
imports. Both SDK routes hand back a HAL device; settings go through :mod:`._hal`.

A recording (``path``: RAW EVT 2.0/2.1/3.0, or Metavision HDF5 on ``sdk5``) is played through the
same SDK code as a camera (``Camera.from_file`` / ``DeviceDiscovery.open_raw_file``), the way
Metavision apps take a file or a camera alike. Its events keep the file's own times: the SDK's
default time shift (which starts a file's clock at its first TIME_HIGH word) is turned off, so the
route delivers exactly what :mod:`eventclip.io` decodes from the same file. A recording ends the
stream when it ends (no reconnection).

The sensor's µs counter restarts when the camera is reopened, so times after a reconnect are
rebased (see :mod:`._live`). Buffers the SDK lends us are copied before they leave the adapter.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from eventclip._optional import MissingDependencyError, available
from eventclip.errors import ConfigError
from eventclip.events import EVENT_DTYPE, TRIGGER_DTYPE, EventChunk, Geometry, empty_events
from eventclip.plugins import missing
from eventclip.sensors import _hal
from eventclip.sensors._live import LiveConfig, LiveSource
from eventclip.sensors.base import SENSORS, StatusCallback
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError, SensorError
from eventclip.sensors.settings import CameraSettings, load_settings, save_settings

BACKEND_MODULES: dict[str, tuple[str, ...]] = {
    "sdk5": ("metavision_sdk_stream", "metavision_hal"),
    "sdk4": ("metavision_core.event_io", "metavision_hal"),
    "neuromorphic-drivers": ("neuromorphic_drivers",),
}
HOW_TO_INSTALL = (
    "Install the Metavision SDK with Prophesee's installer (https://docs.prophesee.ai, 'Installation') "
    "or build OpenEB with Python bindings (https://github.com/prophesee-ai/openeb), so that "
    "metavision_sdk_stream (SDK 5) or metavision_core (SDK 4) imports; or, without the SDK, "
    "pip install 'eventclip[prophesee]' for neuromorphic-drivers (EVK4/EVK3 over USB)."
)


RECORDING_SUFFIXES = {"sdk5": (".raw", ".hdf5", ".h5"), "sdk4": (".raw",)}
"""Recordings each SDK route plays through its camera code: SDK 5's ``Camera.from_file`` reads RAW and
HDF5, SDK 4's ``DeviceDiscovery.open_raw_file`` RAW only. Neither reads DAT (OpenEB 5.1.1's
``Camera.from_file`` crashes the process on one), so a DAT path is refused before the SDK sees it."""


class PropheseeConfig(LiveConfig):
    """A Prophesee camera by serial (None: the first found), with its settings, or a recording played
    through the SDK's camera code (``path``)."""

    kind: Literal["prophesee"] = "prophesee"
    serial: str | None = Field(None, description="camera serial; None: the first camera found")
    path: Path | None = Field(None, description="a recording (RAW; HDF5 on sdk5) played through the SDK instead "
                                                "of a camera, with the file's own times")
    realtime: bool = Field(True, description="path: pace at recorded speed x speed; False: as fast as the SDK reads")
    speed: float = Field(1.0, gt=0, description="path: playback speed factor when realtime (2.0 = twice as fast)")
    backend: Literal["auto", "sdk5", "sdk4", "neuromorphic-drivers"] = "auto"
    slice_us: int = Field(1000, ge=100, le=1_000_000, description="time span of each chunk (µs)")
    settings: CameraSettings = Field(default_factory=CameraSettings)
    settings_file: Path | None = Field(None, description="YAML written by save_settings; 'settings' overrides it")

    @model_validator(mode="after")
    def _check(self) -> PropheseeConfig:
        if self.path is None:
            return self
        if self.serial is not None:
            raise ValueError("give serial (a camera) or path (a recording), not both")
        if self.backend == "neuromorphic-drivers":
            raise ValueError("a recording (path) plays through the Metavision SDK: set backend auto, sdk5 or sdk4")
        if self.settings_file is not None or not self.settings.is_empty():
            raise ValueError("camera settings apply to a camera, not to a recording (path): remove 'settings'")
        if self.reconnect.enabled:
            self.reconnect = self.reconnect.model_copy(update={"enabled": False})
        return self

    def effective_settings(self) -> CameraSettings:
        """``settings_file`` with the inline ``settings`` fields that were given on top."""
        if self.settings_file is None:
            return self.settings
        base = load_settings(self.settings_file).model_dump()
        base.update(self.settings.model_dump(exclude_unset=True))
        return CameraSettings.model_validate(base)


def installed_backends() -> dict[str, bool]:
    """Which routes can be imported here."""
    return {name: all(available(m) for m in modules) for name, modules in BACKEND_MODULES.items()}


def unavailable() -> str | None:
    """None when some route is installed (checked without importing the SDK), else how to get one."""
    if any(missing(modules, "") is None for modules in BACKEND_MODULES.values()):
        return None
    return f"no Prophesee route is installed. {HOW_TO_INSTALL}"


def pick_backend(wanted: str) -> str:
    """The route to use; a missing one raises MissingDependencyError saying how to get it."""
    have = installed_backends()
    if wanted != "auto":
        if not have[wanted]:
            raise MissingDependencyError(f"prophesee backend {wanted!r}: {', '.join(BACKEND_MODULES[wanted])} "
                                         f"not importable. {HOW_TO_INSTALL}")
        return wanted
    for name, ok in have.items():
        if ok:
            return name
    raise MissingDependencyError(f"no Prophesee backend is installed. {HOW_TO_INSTALL}")


def _serials_sdk() -> list[str]:
    return [str(s) for s in importlib.import_module("metavision_hal").DeviceDiscovery.list()]


def _serials_nd() -> list[str]:
    nd = importlib.import_module("neuromorphic_drivers")
    return [str(d.serial) for d in nd.list_devices() if d.serial is not None]


def _matches(wanted: str, listed: str) -> bool:
    """Discovery lists ids like ``Prophesee:hal_plugin_gen41:00050423``; users give the serial part."""
    return listed == wanted or listed.rsplit(":", 1)[-1] == wanted


def list_devices() -> list[dict[str, str]]:
    """Prophesee cameras each installed route can see; MissingDependencyError when none is installed."""
    have = installed_backends()
    if not any(have.values()):
        raise MissingDependencyError(f"no Prophesee backend is installed. {HOW_TO_INSTALL}")
    found = []
    for backend, ok in have.items():
        if ok:
            serials = _serials_nd() if backend == "neuromorphic-drivers" else _serials_sdk()
            found.extend({"serial": s, "model": "", "backend": backend} for s in serials)
    return found


def cd_to_events(arr: np.ndarray) -> np.ndarray:
    """A copy of Metavision EventCD records (x, y, p, t) as EVENT_DTYPE."""
    out = np.empty(len(arr), dtype=EVENT_DTYPE)
    for name in ("x", "y", "p", "t"):
        out[name] = arr[name]
    return out


def ext_to_triggers(arr: np.ndarray) -> np.ndarray:
    """A copy of Metavision EventExtTrigger records (p, t, id) as TRIGGER_DTYPE."""
    out = np.empty(len(arr), dtype=TRIGGER_DTYPE)
    for name in ("p", "t", "id"):
        out[name] = arr[name]
    return out


@SENSORS.register(config=PropheseeConfig, unavailable=unavailable, capabilities={"live": True})
class PropheseeSource(LiveSource):
    """Events (and external triggers) from a Prophesee camera through the SDK or neuromorphic-drivers."""

    kind = "prophesee"
    Config = PropheseeConfig
    rebase_after_gap = True

    def __init__(self, config: PropheseeConfig, on_status: StatusCallback | None = None, **kwargs: Any) -> None:
        super().__init__(config, on_status, **kwargs)
        self.config: PropheseeConfig = config
        self.clock = "sensor"
        self.backend: str = ""
        self._settings = config.effective_settings()
        self._device: Any = None
        self._stream: Any = None
        self._paced_from: tuple[float, int] | None = None

    # -- connect ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.config.path is not None:
            self._connect_recording(self.config.path)
            return
        self.backend = pick_backend(self.config.backend)
        serial = self.config.serial
        found = _serials_nd() if self.backend == "neuromorphic-drivers" else _serials_sdk()
        if not found or (serial and not any(_matches(serial, s) for s in found)):
            raise DeviceNotFoundError(f"prophesee ({self.backend})", serial, found)
        connect = {"sdk5": self._connect_sdk5, "sdk4": self._connect_sdk4, "neuromorphic-drivers": self._connect_nd}
        connect[self.backend](serial)

    def _connect_recording(self, path: Path) -> None:
        """Open a recording through an SDK route (never neuromorphic-drivers, which reads cameras only)."""
        wanted = self.config.backend
        if wanted == "auto":
            have = installed_backends()
            wanted = "sdk4" if have["sdk4"] and not have["sdk5"] else "sdk5"
        self.backend = pick_backend(wanted)
        if not path.is_file():
            raise ConfigError(f"prophesee: path {str(path)!r} is not a file; give an existing recording")
        suffixes = RECORDING_SUFFIXES[self.backend]
        if path.suffix.lower() not in suffixes:
            raise ConfigError(f"prophesee: the Metavision SDK ({self.backend}) plays {', '.join(suffixes)} recordings "
                              f"through its camera code, not {path.name}; replay it with kind: replay instead")
        if self.backend == "sdk5":
            self._connect_sdk5(None, path)
        else:
            self._connect_sdk4(None, path)
        self.sensor_id = path.name
        self._paced_from = None

    def _connect_sdk5(self, serial: str | None, path: Path | None = None) -> None:
        stream = importlib.import_module("metavision_sdk_stream")
        if path is not None:  # the file's own times; pacing is ours (see _pace), not the SDK's real-time playback
            hints = stream.FileConfigHints().time_shift(False).real_time_playback(False)
            camera = stream.Camera.from_file(str(path), hints)
        else:
            camera = stream.Camera.from_serial(serial) if serial else stream.Camera.from_first_available()
            self._device = camera.get_device()
            _hal.apply_settings(self._device, self._settings)
        self.geometry = Geometry(int(camera.width()), int(camera.height()))
        self.sensor_id = self._hw_serial(serial)
        condition = stream.SliceCondition.make_n_us(self.config.slice_us)
        self._stream = stream.CameraStreamSlicer(camera.move(), condition)
        if path is None:
            self._device = self._stream.camera().get_device()  # the moved camera now lives in the slicer

    def _connect_sdk4(self, serial: str | None, path: Path | None = None) -> None:
        hal = importlib.import_module("metavision_hal")
        event_io = importlib.import_module("metavision_core.event_io")
        if path is not None:
            file_config = hal.RawFileConfig()
            file_config.do_time_shifting = False
            device = hal.DeviceDiscovery.open_raw_file(str(path), file_config)
        else:
            device = hal.DeviceDiscovery.open(serial or "")
            if device is None:
                raise DeviceNotFoundError("prophesee (sdk4)", serial, _serials_sdk())
            _hal.apply_settings(device, self._settings)
        self._device = device
        self._stream = event_io.EventsIterator.from_device(device=device, delta_t=self.config.slice_us)
        height, width = self._stream.get_size()
        self.geometry = Geometry(int(width), int(height))
        self.sensor_id = self._hw_serial(serial)

    def _connect_nd(self, serial: str | None) -> None:
        if not self._settings.is_empty():
            raise SensorError(
                "prophesee: camera settings (biases, ROI, ERC, filters, triggers) need the Metavision SDK route; "
                "set backend: sdk5 or sdk4, or remove 'settings'"
            )
        nd = importlib.import_module("neuromorphic_drivers")
        device = nd.open(serial=serial) if serial else nd.open()
        props = device.properties()
        self.geometry = Geometry(int(props.width), int(props.height))
        self.sensor_id = str(device.serial())
        self._stream = device

    def _hw_serial(self, fallback: str | None) -> str:
        ident = self._device.get_i_hw_identification() if self._device is not None else None
        return str(ident.get_serial()) if ident is not None else (fallback or "")

    # -- read --------------------------------------------------------------------------------------
    def _packets(self) -> Iterator[EventChunk]:
        read = {"sdk5": self._read_sdk5, "sdk4": self._read_sdk4, "neuromorphic-drivers": self._read_nd}
        try:
            yield from read[self.backend]()
        except RuntimeError as exc:
            raise DeviceLostError(f"prophesee {self.sensor_id}: {exc}") from exc

    def _chunk(self, events: np.ndarray, triggers: np.ndarray | None, t_end_us: int | None = None) -> EventChunk:
        assert self.geometry is not None
        meta: dict = {"source": self.name}
        if triggers is not None and len(triggers):
            meta["triggers"] = ext_to_triggers(triggers)
        return EventChunk(cd_to_events(events), self.geometry, t_end_us=t_end_us, meta=meta)

    def _pace(self, t_end_us: int) -> None:
        """Hold a recording's slice until its time comes (recorded speed x ``speed``), as a camera would
        deliver it. Scheduled from the first slice on the source's clock, so slow consumers cause no drift."""
        if self.config.path is None or not self.config.realtime:
            return
        if self._paced_from is None:
            self._paced_from = (self._clock(), t_end_us)
        host0, t0 = self._paced_from
        wait = host0 + (t_end_us - t0) / 1e6 / self.config.speed - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _read_sdk5(self) -> Iterator[EventChunk]:
        """Slices end at ``Slice.t`` (µs, exclusive), except the one the SDK flushes when the stream ends
        (status MET_AUTOMATIC), whose ``t`` is its last event's time: that end is moved one µs past it."""
        for piece in self._stream:
            t_end_us = int(piece.t)
            if piece.n_events:
                t_end_us = max(t_end_us, int(piece.events["t"][-1]) + 1)
            self._pace(t_end_us)
            yield self._chunk(piece.events, piece.triggers, t_end_us=t_end_us)
            if self._closed.is_set():
                return

    def _read_sdk4(self) -> Iterator[EventChunk]:
        """EventsIterator slices, each ending at ``get_current_time()`` (µs). It counts slices from t = 0,
        so the empty ones before the first event (all of a recording's clock before it was cut) are
        skipped."""
        it = self._stream
        want_triggers = bool(self._settings.trigger_in)
        started = False
        for events in it:
            started = started or len(events) > 0
            if not started:
                continue
            t_end_us = int(it.get_current_time())
            triggers = None
            if want_triggers:
                triggers = it.get_ext_trigger_events()
                it.reader.clear_ext_trigger_events()
            self._pace(t_end_us)
            yield self._chunk(events, triggers, t_end_us=t_end_us)
            if self._closed.is_set():
                return

    def _read_nd(self) -> Iterator[EventChunk]:
        assert self.geometry is not None
        last_t: int | None = None
        for _status, packet in self._stream:
            if self._closed.is_set():
                return
            events, triggers, overflows = _nd_fields(packet)
            if events is None:
                continue
            converted = np.empty(len(events), dtype=EVENT_DTYPE)
            converted["x"], converted["y"] = events["x"], events["y"]
            converted["p"], converted["t"] = events["on"], events["t"]
            meta: dict = {"source": self.name}
            if triggers is not None and len(triggers):
                tr = np.empty(len(triggers), dtype=TRIGGER_DTYPE)
                tr["p"], tr["t"], tr["id"] = triggers["rising"], triggers["t"], triggers["id"]
                meta["triggers"] = tr
            yield from _split_at_overflows(EventChunk(converted, self.geometry, meta=meta), overflows, last_t)
            if len(converted):
                last_t = int(converted["t"][-1])

    # -- settings and release ----------------------------------------------------------------------
    def current_settings(self) -> CameraSettings:
        """The camera's settings now (biases and ERC read back from the device)."""
        if self._device is None:
            raise SensorError(f"{self.name}: settings can be read only from a connected camera on an SDK route")
        return _hal.read_settings(self._device, self._settings)

    def save_settings(self, path: str | Path) -> None:
        """Write :meth:`current_settings` to a YAML file usable as ``settings_file``."""
        save_settings(path, self.current_settings())

    def _disconnect(self) -> None:
        stream, self._stream, self._device = self._stream, None, None
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _nd_fields(packet: Any) -> tuple[Any, Any, Any]:
    """(polarity events, trigger events, overflow indices) of a neuromorphic-drivers packet (old dict or new object)."""
    if isinstance(packet, dict):
        return packet.get("dvs_events"), packet.get("trigger_events"), None
    return (
        getattr(packet, "polarity_events", None),
        getattr(packet, "trigger_events", None),
        getattr(packet, "polarity_events_overflow_indices", None),
    )


def _split_at_overflows(chunk: EventChunk, overflows: Any, last_t: int | None = None) -> Iterator[EventChunk]:
    """Cut a chunk where the USB ring overflowed and report each loss as a gap chunk.

    ``last_t`` is the time (µs) of the last event before this chunk, when known.
    """
    if overflows is None or len(overflows) == 0:
        yield chunk
        return
    ev = chunk.events
    start = 0
    for index in list(overflows) + [len(ev)]:
        index = int(index)
        if index > start:
            yield EventChunk(ev[start:index], chunk.geometry, meta=dict(chunk.meta) if start == 0 else {})
        if index < len(ev):
            before = int(ev["t"][index - 1]) if index > 0 else last_t
            t_before = None if before is None else before + 1
            meta = {"gap": True, "reason": "usb overflow", "t_start_us": t_before, "t_end_us": int(ev["t"][index])}
            yield EventChunk(empty_events(), chunk.geometry, t_end_us=int(ev["t"][index]), meta=meta)
        start = index
