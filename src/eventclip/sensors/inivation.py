"""iniVation cameras (DVXplorer, DAVIS, DVS128) and DV network streams, through dv-processing.

Two routes, one config:

- a USB camera: ``dv.io.camera.open(serial)`` (``serial`` empty: the first camera found), with
  the DVXplorer contrast thresholds and subsampling, and the DAVIS coarse/fine biases and noise
  filters applied at connect (and again after every reconnect);
- a DV network stream: ``dv.io.NetworkReader`` on TCP (``host`` + ``port``) or a UNIX socket
  (``socket_path``), which lets a DV-software installation (its "Output to network" modules) feed us.

dv-processing timestamps are µs since the Unix epoch, so they continue naturally across a
reconnect (``rebase_after_gap`` is False). Events are converted to eventclip's dtype field by field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from eventclip._optional import require
from eventclip.events import EVENT_DTYPE, EventChunk, Geometry
from eventclip.plugins import missing
from eventclip.sensors._live import LiveConfig, LiveSource
from eventclip.sensors.base import SENSORS, StatusCallback
from eventclip.sensors.errors import DeviceLostError, DeviceNotFoundError, SensorError

SubSample = Literal[
    "EVERY_PIXEL", "EVERY_SECOND", "BAND_OF_TWO", "EVERY_FOURTH", "BAND_OF_FOUR", "EVERY_EIGHTH"
]


class DvxplorerSettings(BaseModel):
    """DVXplorer options (applied only to a DVXplorer); None leaves the camera's default."""

    model_config = ConfigDict(extra="forbid")
    contrast_threshold_on: int | None = Field(None, ge=0, description="ON contrast threshold (sensor units)")
    contrast_threshold_off: int | None = Field(None, ge=0, description="OFF contrast threshold (sensor units)")
    subsample_horizontal: SubSample | None = None
    subsample_vertical: SubSample | None = None


class DavisSettings(BaseModel):
    """DAVIS options (applied only to a DAVIS); None leaves the camera's default."""

    model_config = ConfigDict(extra="forbid")
    biases: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description="Davis346 coarse/fine biases by name (e.g. {'On': [3, 40]}); see dv.io.camera.DAVIS.Davis346BiasCF",
    )
    background_activity_filter_250us: int | None = Field(None, ge=0, description="noise filter delta, in 250 µs units")
    refractory_period_filter_250us: int | None = Field(None, ge=0, description="refractory filter, in 250 µs units")


class InivationConfig(LiveConfig):
    """An iniVation camera by serial, or a DV network stream (TCP or UNIX socket)."""

    kind: Literal["inivation"] = "inivation"
    serial: str | None = Field(None, description="camera serial; None: the first camera found")
    host: str | None = Field(None, description="DV network stream: server address (with port)")
    port: int | None = Field(None, ge=1, le=65535, description="DV network stream: TCP port")
    socket_path: Path | None = Field(None, description="DV network stream: UNIX socket path")
    dvxplorer: DvxplorerSettings = Field(default_factory=DvxplorerSettings)
    davis: DavisSettings = Field(default_factory=DavisSettings)

    @model_validator(mode="after")
    def _check(self) -> InivationConfig:
        tcp = self.host is not None or self.port is not None
        if tcp and (self.host is None or self.port is None):
            raise ValueError("a TCP network stream needs both host and port")
        if tcp and self.socket_path is not None:
            raise ValueError("give host+port (TCP) or socket_path (UNIX socket), not both")
        if self.serial is not None and (tcp or self.socket_path is not None):
            raise ValueError("serial selects a USB camera; host/port/socket_path select a network stream — not both")
        return self

    @property
    def network(self) -> bool:
        """True for a DV network stream, False for a USB camera."""
        return self.host is not None or self.socket_path is not None


def dv_to_events(arr: np.ndarray) -> np.ndarray:
    """dv-processing's event record (timestamp i8, x i2, y i2, polarity i1) as EVENT_DTYPE (t in µs)."""
    out = np.empty(len(arr), dtype=EVENT_DTYPE)
    out["t"] = arr["timestamp"]
    out["x"] = arr["x"]
    out["y"] = arr["y"]
    out["p"] = arr["polarity"]
    return out


def _dv() -> Any:
    return require("dv_processing", "inivation", "iniVation cameras and DV network streams")


def unavailable() -> str | None:
    """None when dv-processing is installed (checked without importing it), else how to get it."""
    return missing("dv_processing", "pip install 'eventclip[inivation]'")


def list_devices() -> list[dict[str, str]]:
    """iniVation USB cameras dv-processing can see: serial and model."""
    dv = _dv()
    return [
        {"serial": str(d.serialNumber), "model": str(d.cameraModel), "backend": "dv-processing"}
        for d in dv.io.camera.discover()
    ]


@SENSORS.register(config=InivationConfig, unavailable=unavailable, capabilities={"live": True})
class InivationSource(LiveSource):
    """Events from an iniVation camera or a DV network stream."""

    kind = "inivation"
    Config = InivationConfig
    rebase_after_gap = False

    def __init__(self, config: InivationConfig, on_status: StatusCallback | None = None, **kwargs: Any) -> None:
        super().__init__(config, on_status, **kwargs)
        self.config: InivationConfig = config
        self.clock = "sensor"
        self._reader: Any = None

    def _connect(self) -> None:
        dv = _dv()
        cfg = self.config
        if cfg.network:
            self._reader = self._open_network(dv)
        else:
            self._reader = self._open_camera(dv)
            self._apply_settings(dv, self._reader)
        if not self._reader.isEventStreamAvailable():
            self._disconnect()
            raise SensorError(f"{self._where()}: the stream carries no events (frames or IMU only?)")
        width, height = self._reader.getEventResolution()
        self.geometry = Geometry(int(width), int(height))
        self.sensor_id = str(self._reader.getCameraName())

    def _where(self) -> str:
        cfg = self.config
        if cfg.socket_path is not None:
            return f"DV stream unix:{cfg.socket_path}"
        if cfg.host is not None:
            return f"DV stream tcp://{cfg.host}:{cfg.port}"
        return f"iniVation camera {cfg.serial or '(first found)'}"

    def _open_network(self, dv: Any) -> Any:
        cfg = self.config
        try:
            if cfg.socket_path is not None:
                return dv.io.NetworkReader(str(cfg.socket_path))
            return dv.io.NetworkReader(cfg.host, cfg.port)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0].split(" [")[0]
            raise SensorError(f"{self._where()}: cannot connect ({first}); is the DV output module running?") from exc

    def _open_camera(self, dv: Any) -> Any:
        serial = self.config.serial
        found = [str(d.serialNumber) for d in dv.io.camera.discover()]
        if (serial and serial not in found) or not found:
            raise DeviceNotFoundError("dv-processing", serial, found)
        try:
            return dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except RuntimeError as exc:
            raise SensorError(f"{self._where()}: {str(exc).splitlines()[0]}") from exc

    def _apply_settings(self, dv: Any, camera: Any) -> None:
        """Push the DVXplorer / DAVIS options to a camera of that family."""
        x, d = self.config.dvxplorer, self.config.davis
        if isinstance(camera, dv.io.camera.DVXplorer):
            if x.contrast_threshold_on is not None:
                camera.setContrastThresholdOn(x.contrast_threshold_on)
            if x.contrast_threshold_off is not None:
                camera.setContrastThresholdOff(x.contrast_threshold_off)
            if x.subsample_horizontal is not None:
                camera.setSubSampleHorizontal(getattr(camera.SubSample, x.subsample_horizontal))
            if x.subsample_vertical is not None:
                camera.setSubSampleVertical(getattr(camera.SubSample, x.subsample_vertical))
        if isinstance(camera, dv.io.camera.DAVIS):
            for name, (coarse, fine) in d.biases.items():
                bias = getattr(camera.Davis346BiasCF, name, None)
                if bias is None:
                    raise SensorError(
                        f"davis.biases: unknown bias {name!r}; choose from {sorted(camera.Davis346BiasCF.__members__)}"
                    )
                camera.setDavis346BiasCoarseFine(bias, coarse, fine)
            if d.background_activity_filter_250us is not None:
                camera.setBackgroundActivityFilter(d.background_activity_filter_250us)
            if d.refractory_period_filter_250us is not None:
                camera.setRefractoryPeriodFilter(d.refractory_period_filter_250us)

    def _packets(self) -> Iterator[EventChunk]:
        assert self.geometry is not None
        while not self._closed.is_set():
            batch = self._reader.getNextEventBatch()
            if batch is not None and batch.size() > 0:
                yield EventChunk(dv_to_events(batch.numpy()), self.geometry, meta={"source": self.name})
                continue
            if not self._reader.isRunning():
                raise DeviceLostError(f"{self._where()} stopped (unplugged, or the server went away)")
            self._wait()

    def _disconnect(self) -> None:
        """Drop the reader; a NetworkReader disconnects from its server when destroyed."""
        self._reader = None
