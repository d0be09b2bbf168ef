"""Events from a video file or a webcam, converted live by :class:`eventclip.sensors.video_events.VideoToEvents`.

Why: a webcam is the cheapest way to try the pipeline without an event camera, and a video file
makes the same path reproducible. Frames are read with OpenCV, turned to grayscale (and resized
when ``width``/``height`` are given), and each frame yields the events since the previous one.

Clocks: a file's events carry video time (``frame index / fps`` in µs, ``clock == "sensor"``),
paced against the host clock like a replay when ``realtime``; a webcam's events carry the host's
monotonic clock in µs at capture (``clock == "host"``), and a webcam that stops delivering is
reconnected with backoff like any live camera. A file simply ends.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from eventclip._optional import require
from eventclip.errors import ConfigError
from eventclip.events import EventChunk, Geometry
from eventclip.plugins import missing
from eventclip.sensors._live import LiveConfig, LiveSource
from eventclip.sensors.base import SENSORS, StatusCallback
from eventclip.sensors.errors import DeviceLostError, SensorError
from eventclip.sensors.video_events import VideoToEvents


class VideoConfig(LiveConfig):
    """A video file (``path``) or a webcam (``camera_index``), and the video-to-events model."""

    kind: Literal["video"] = "video"
    path: Path | None = Field(None, description="video file OpenCV can read")
    camera_index: int | None = Field(None, ge=0, description="webcam index (0: the first camera)")
    mode: Literal["dvs", "paper"] = Field("dvs", description="converter model (see eventclip.sensors.video_events)")
    threshold: float | None = Field(None, gt=0, description="dvs: log contrast for ON and OFF; paper: gray levels")
    refractory_us: int = Field(0, ge=0, description="dvs: per-pixel dead time (µs)")
    width: int | None = Field(None, gt=0, description="resize frames to this width (pixels)")
    height: int | None = Field(None, gt=0, description="resize frames to this height (pixels)")
    fps: float | None = Field(None, gt=0, description="file frame rate when the container does not say")
    realtime: bool = Field(True, description="file: pace at the video's own speed; False: as fast as possible")

    @model_validator(mode="after")
    def _check(self) -> VideoConfig:
        if (self.path is None) == (self.camera_index is None):
            raise ValueError("give exactly one of path (a video file) or camera_index (a webcam)")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height (pixels), or neither")
        if self.path is not None and self.reconnect.enabled:
            self.reconnect = self.reconnect.model_copy(update={"enabled": False})
        return self


def unavailable() -> str | None:
    """None when OpenCV is installed (checked without importing it), else how to get it."""
    return missing("cv2", "pip install 'eventclip[video]'")


def list_devices() -> list[dict[str, str]]:
    """Video4Linux devices (Linux); OpenCV itself cannot enumerate cameras."""
    return [{"serial": path, "model": "V4L2 device", "backend": "opencv"} for path in sorted(glob.glob("/dev/video*"))]


# live False: the daemon opens a video like a file, before the model loads, so its errors come first;
# no_devices: what `eventclip sensors list` says when no webcam is plugged in
@SENSORS.register(config=VideoConfig, unavailable=unavailable,
                  capabilities={"live": False, "no_devices": "no /dev/video* webcams (video files work)"})
class VideoSource(LiveSource):
    """Live events from video frames; a file ends, a webcam reconnects."""

    kind = "video"
    Config = VideoConfig
    rebase_after_gap = False

    def __init__(self, config: VideoConfig, on_status: StatusCallback | None = None, **kwargs: Any) -> None:
        super().__init__(config, on_status, **kwargs)
        self.config: VideoConfig = config
        self.clock = "sensor" if config.path is not None else "host"
        self.paced = config.realtime or config.path is None
        self._cap: Any = None
        self._fps = 0.0

    def _connect(self) -> None:
        cv2 = require("cv2", "video", "video files and webcams")
        cfg = self.config
        if cfg.path is not None and not cfg.path.is_file():
            raise ConfigError(f"video: path {str(cfg.path)!r} is not a file; give an existing video file")
        cap = cv2.VideoCapture(str(cfg.path)) if cfg.path is not None else cv2.VideoCapture(cfg.camera_index)
        if not cap.isOpened():
            cap.release()
            what = f"video file {cfg.path}" if cfg.path is not None else f"webcam {cfg.camera_index}"
            raise SensorError(f"{what}: OpenCV cannot open it (codec missing, or no such camera)")
        self._cap = cap
        if cfg.width is not None and cfg.height is not None:
            self.geometry = Geometry(cfg.width, cfg.height)
        else:
            self.geometry = Geometry(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._fps = cfg.fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if cfg.path is not None and self._fps <= 0:
            raise ConfigError(f"video: {cfg.path} does not state its frame rate; set the 'fps' field")
        self.sensor_id = cfg.path.name if cfg.path is not None else f"webcam{cfg.camera_index}"

    def _converter(self) -> VideoToEvents:
        cfg = self.config
        return VideoToEvents(cfg.mode, threshold=cfg.threshold, refractory_us=cfg.refractory_us)

    def _packets(self) -> Iterator[EventChunk]:
        cv2 = require("cv2", "video")
        assert self.geometry is not None
        is_file = self.config.path is not None
        convert = self._converter()
        index = 0
        host_start = self._clock()
        while not self._closed.is_set():
            ok, frame = self._cap.read()
            if not ok:
                if is_file:
                    return
                raise DeviceLostError(f"{self.sensor_id} stopped delivering frames")
            if is_file:
                t_us = round(index * 1e6 / self._fps)
                if self.config.realtime and (wait := host_start + t_us / 1e6 - self._clock()) > 0:
                    self._sleep(wait)
            else:
                t_us = time.monotonic_ns() // 1000
            index += 1
            gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if gray.shape != self.geometry.shape:
                gray = cv2.resize(gray, (self.geometry.width, self.geometry.height), interpolation=cv2.INTER_AREA)
            events = convert.push(gray, t_us)
            yield EventChunk(events, self.geometry, t_end_us=t_us + 1, meta={"frame": index - 1})

    def _disconnect(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
