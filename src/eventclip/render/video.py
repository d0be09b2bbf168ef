"""One review picture per window (the frame the encoder saw, its labels, the anomaly plot) as MP4 and/or PNGs.

Why: a recording's labels in a table are hard to judge; seeing each window's input beside what the
model said, with the anomaly score over time, lets a user review a recording at a glance. Frames
are drawn with Pillow; the MP4 is written by OpenCV (``mp4v``, extra ``video``), one frame per
window, at the recording's own pace by default (1 s of video per s of events).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from eventclip._optional import require
from eventclip.errors import ConfigError
from eventclip.frames.preview import model_input_to_image

SIZE = (960, 540)
"""Review frame (width, height), pixels: even, as MP4 encoders need."""
PLOT_WINDOWS = 120
"""Windows shown in the anomaly plot (the latest at the right edge)."""
_BG, _FG, _DIM, _BAR, _RED = (21, 23, 26), (230, 230, 230), (150, 156, 162), (74, 144, 217), (255, 107, 107)


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


class ReviewFrames:
    """Draws review frames one window after another (keeps the scores the anomaly plot needs).

    ``representation`` undoes the model input's normalisation; ``threshold`` is the anomaly
    threshold (None when the prompts define no anomaly set).
    """

    def __init__(self, representation: Any, threshold: float | None) -> None:
        self.representation = representation
        self.threshold = threshold
        self.scores: deque[float | None] = deque(maxlen=PLOT_WINDOWS)
        self._big, self._small = _font(22), _font(16)

    def draw(self, result: Any, model_input: np.ndarray) -> Image.Image:
        """The review frame of one window: its :class:`~eventclip.heads.base.Result` and its (3, S, S) input."""
        self.scores.append(result.anomaly)
        canvas = Image.new("RGB", SIZE, _BG)
        side = SIZE[1] - 60
        view = model_input_to_image(model_input, self.representation.mean, self.representation.std)
        canvas.paste(view.resize((side, side), Image.NEAREST), (30, 30))
        d = ImageDraw.Draw(canvas)
        x0 = side + 60
        d.text((x0, 30), f"{result.t_start_us / 1e6:.3f} s  ·  {result.n_events} events", fill=_FG, font=self._big)
        y = 80
        for label, p in result.labels:
            d.text((x0, y), f"{label}", fill=_FG, font=self._small)
            d.text((SIZE[0] - 90, y), f"{p:.3f}", fill=_DIM, font=self._small)
            d.rectangle((x0, y + 22, x0 + int((SIZE[0] - 30 - x0) * p), y + 28), fill=_BAR)
            y += 40
        self._plot(d, (x0, SIZE[1] - 190, SIZE[0] - 30, SIZE[1] - 30), result)
        return canvas

    def _plot(self, d: ImageDraw.ImageDraw, box: tuple[int, int, int, int], result: Any) -> None:
        x0, y0, x1, y1 = box
        d.rectangle(box, outline=(60, 64, 70))
        if result.anomaly is None:
            d.text((x0 + 10, y0 + 10), "no anomaly set in the prompts", fill=_DIM, font=self._small)
            return
        flag = "  ANOMALY" if result.flag else ""
        d.text((x0, y0 - 26), f"anomaly {result.anomaly:.3f}{flag}", fill=_RED if result.flag else _FG,
               font=self._small)

        def y_of(v: float) -> float:
            return y1 - 4 - v * (y1 - y0 - 8)

        if self.threshold is not None:
            for x in range(x0, x1, 12):
                d.line((x, y_of(self.threshold), min(x + 6, x1), y_of(self.threshold)), fill=_RED)
        step = (x1 - x0) / (PLOT_WINDOWS - 1)
        start = x1 - step * (len(self.scores) - 1)
        points = [(start + i * step, y_of(v)) for i, v in enumerate(self.scores) if v is not None]
        if len(points) > 1:
            d.line(points, fill=_BAR, width=2)


class Mp4Writer:
    """An ``mp4v`` MP4 file written frame by frame with OpenCV; errors name the file and the extra."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int] = SIZE) -> None:
        self.cv2 = require("cv2", "video", "writing --video")
        self.path = Path(path)
        if fps <= 0:
            raise ConfigError(f"--video-fps must be > 0, got {fps}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self.cv2.VideoWriter(str(self.path), self.cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise ConfigError(f"--video {self.path}: OpenCV cannot write an mp4v video there (use a .mp4 name in a "
                              "writable folder)")
        self.frames = 0

    def write(self, image: Image.Image) -> None:
        self._writer.write(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()


def render(results: Iterable[tuple[Any, np.ndarray]], representation: Any, threshold: float | None,
           video: Mp4Writer | None = None, frames_dir: str | Path | None = None) -> Iterator[Any]:
    """Draw each (result, model input) into ``video`` and/or ``frames_dir`` (``window_<index>_<t_start_us>.png``),
    passing the results on (so the caller prints them as they come)."""
    review = ReviewFrames(representation, threshold)
    folder = Path(frames_dir) if frames_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for i, (result, x) in enumerate(results):
        image = review.draw(result, x)
        if video is not None:
            video.write(image)
        if folder is not None:
            image.save(folder / f"window_{i:05d}_{result.t_start_us}.png")
        yield result
