"""What the live page shows, kept so that the pipeline pays nothing for it while nobody watches.

Why a hub between the pipeline and the web server: the pipeline must never wait for a browser.
The publisher hands the hub every message it sends (a dict it built anyway: labels, anomaly,
stats, status), and the publishing stage hands it a *reference* to the last micro-batch it
published (its windows and the model input the encoder got), only while a page is open. Nothing
is copied or encoded there: PNGs are made here, lazily, when a connected page asks (the server
polls at a few frames per second), once per window whatever the number of tabs.

The two images of a window: the model input undone to the RGB the encoder saw (input_size²), and
the event frame before any resizing, counted at sensor resolution from the window's events.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventclip.events import Geometry
from eventclip.frames.preview import frame_to_image, model_input_to_image
from eventclip.heads.classifier import as_numpy

TIMELINE_S = 300.0
"""How much of the anomaly score the page plots (sensor seconds)."""
MAX_POINTS = 20_000
"""Memory bound of the anomaly timeline (points), whatever the window rate."""
RECENT_LABELS = 256
"""Labels messages kept to pair the latest frames with the message published for the same window."""


@dataclass
class Cursor:
    """What one page (one SSE connection) has already been sent."""

    points: int = 0
    """Timeline points sent (counted since start, :attr:`LiveHub.points_total`)."""
    window: int | None = None
    """``t_start_us`` of the window whose images and labels were sent last."""
    stats_seq: int | None = None
    status_seq: int | None = None


@dataclass
class _Batch:
    windows: list
    model_input: Any
    geometry: Geometry


@dataclass
class _Images:
    t_start_us: int
    urls: dict[str, str] = field(default_factory=dict)


class LiveHub:
    """Latest window, labels, anomaly timeline, stats and status for the live page; thread-safe.

    ``representation`` is the model's (:class:`~eventclip.frames.preprocess.Representation`): its
    mean/std undo the model input, its variant draws the sensor-resolution frame.
    """

    def __init__(self, representation: Any, timeline_s: float = TIMELINE_S) -> None:
        self.representation = representation
        self.timeline_s = timeline_s
        self.watchers = 0
        self.renders = 0
        """Windows turned into PNGs so far (stays 0 while nobody watches)."""
        self.points_total = 0
        self.timeline: deque[tuple[float, float]] = deque(maxlen=MAX_POINTS)
        self.threshold: float | None = None
        self.stats: dict | None = None
        self.status: dict | None = None
        self._labels: dict[int, dict] = {}
        self._latest_labels: dict | None = None
        self._batch: _Batch | None = None
        self._images: _Images | None = None
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()

    # ---- fed by the daemon ----------------------------------------------------------------------

    @property
    def watching(self) -> bool:
        """True while at least one page is connected."""
        return self.watchers > 0

    def attach(self) -> None:
        with self._lock:
            self.watchers += 1

    def detach(self) -> None:
        with self._lock:
            self.watchers = max(0, self.watchers - 1)
            if self.watchers == 0:
                self._batch = self._images = None  # hold no windows while nobody watches

    def on_message(self, topic: str, message: dict) -> None:
        """Publisher observer: every message the daemon publishes, as the dict that was encoded."""
        with self._lock:
            if topic == "labels":
                self._latest_labels = message
                self._labels[message["t_start_us"]] = message
                if len(self._labels) > RECENT_LABELS:
                    del self._labels[next(iter(self._labels))]
                score = message["anomaly_score"]
                if score is not None:
                    t = message["t_end_us"] / 1e6
                    self.timeline.append((t, score))
                    self.points_total += 1
                    while self.timeline and self.timeline[0][0] < t - self.timeline_s:
                        self.timeline.popleft()
            elif topic == "anomaly":
                self.threshold = message["threshold"]
            elif topic == "stats":
                self.stats = message
            elif topic == "status":
                self.status = message

    def offer(self, windows: list, model_input: Any, geometry: Geometry) -> None:
        """The publishing stage's hand-over of the batch it just published: references only, kept
        only while a page is open."""
        if self.watchers:
            self._batch = _Batch(windows, model_input, geometry)

    # ---- read by the server ---------------------------------------------------------------------

    def update(self, cursor: Cursor) -> dict | None:
        """What a page has not seen yet (None when nothing changed); advances ``cursor``.

        Renders the latest window's PNGs when they are new (once per window for every page).
        """
        images = self._render()
        out: dict[str, Any] = {}
        with self._lock:
            labels = self._latest_labels
            if images is not None and images.t_start_us in self._labels:
                labels = self._labels[images.t_start_us]
            key = None if labels is None else labels["t_start_us"]
            if key is not None and key != cursor.window:
                out["window"] = labels
                if images is not None and images.t_start_us == key:
                    out["images"] = images.urls
                cursor.window = key
            dropped = self.points_total - len(self.timeline)
            start = max(cursor.points, dropped)
            if start < self.points_total:
                out["points"] = list(self.timeline)[start - dropped:]
                out["reset"] = cursor.points < max(dropped, 1)  # a new page, or one that fell behind the bound
                cursor.points = self.points_total
            if self.stats is not None and self.stats["seq"] != cursor.stats_seq:
                out["stats"] = self.stats
                cursor.stats_seq = self.stats["seq"]
            if self.status is not None and self.status["seq"] != cursor.status_seq:
                out["status"] = self.status
                cursor.status_seq = self.status["seq"]
        if not out:
            return None
        out["threshold"] = self.threshold
        out["timeline_s"] = self.timeline_s
        return out

    def _render(self) -> _Images | None:
        batch = self._batch
        if batch is None:
            return self._images
        with self._render_lock:
            window = batch.windows[-1]
            if self._images is not None and self._images.t_start_us == int(window.t_start):
                return self._images

            rep = self.representation
            x = as_numpy(batch.model_input[len(batch.windows) - 1: len(batch.windows)])[0]
            sensor = rep.model_copy(update={"count_at": "sensor"}).frames([window.parts], batch.geometry)[0]
            images = _Images(int(window.t_start), {"model": _png_url(_model_image(x, rep)),
                                                   "sensor": _png_url(_sensor_image(sensor, rep))})
            self.renders += 1
            self._images = images
            return images


def _model_image(x: np.ndarray, rep: Any):
    return model_input_to_image(x, rep.mean, rep.std)


def _sensor_image(frame: np.ndarray, rep: Any):
    return frame_to_image(frame, rep.variant)


def _png_url(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
