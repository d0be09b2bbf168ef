"""Where each sensor pixel lands on the model's input grid, for counting events there.

Why count on the model's grid: a 1280x720 window normalised by its peak count and then averaged
down to the model's 224 px (or the bundled model's 64 px) ends with its brightest pixel near the
background, so every real recording becomes nearly the same blank input. Mapping each event's
coordinates onto the model's grid first and counting there (what Jeong et al.'s dataset code does:
rescale x and y to 224x224, then count) sums the events of a whole block of sensor pixels into one
model pixel, so the normalised frame keeps its contrast at any sensor size.

The mapping is separable: one table per axis (:class:`ModelGrid`), ``-1`` where a sensor column
or row is dropped (outside the ROI, or cut off by ``crop``). A sensor coordinate ``c`` (pixels,
relative to the region used) lands at ``floor(float32(c) * float32(scale)) + pad``: float32 because
the authors' code multiplies float32 coordinates that way, so the ``authors`` representation equals
theirs pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np

from eventclip.events import Geometry
from eventclip.frames.errors import FramesError

Fit = Literal["letterbox", "crop", "stretch"]
Roi = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class ModelGrid:
    """Per-axis tables from sensor pixels to the model's ``size`` x ``size`` grid.

    ``x_map`` has one int32 entry per sensor column, ``y_map`` one per sensor row: the model column
    (row) the sensor column (row) lands in, or -1 when it is dropped.
    """

    x_map: np.ndarray
    y_map: np.ndarray
    size: int

    @property
    def geometry(self) -> Geometry:
        """The sensor geometry the tables were made for (width, height in pixels)."""
        return Geometry(len(self.x_map), len(self.y_map))

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape on the grid: (size, size)."""
        return (self.size, self.size)

    def map_events(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid (column, row) of events at sensor (x, y), and which events are kept (not dropped)."""
        mx = self.x_map[np.asarray(x, dtype=np.intp)]
        my = self.y_map[np.asarray(y, dtype=np.intp)]
        keep = (mx >= 0) & (my >= 0)
        return mx, my, keep

    @cached_property
    def kernel_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The tables :func:`eventclip.frames._kernels.count_windows_mapped` reads: grid column and
        grid row x size per sensor column/row, with ``size**2`` (the trash slot) for dropped ones and
        one extra trailing entry where out-of-sensor coordinates go."""
        plane = self.size * self.size
        x = np.append(np.where(self.x_map >= 0, self.x_map, plane), plane).astype(np.uint32)
        y = np.append(np.where(self.y_map >= 0, self.y_map * self.size, plane), plane).astype(np.uint32)
        return x, y


def _axis(length: int, span: tuple[float, float], scale: float, dst_start: int, dst_len: int) -> np.ndarray:
    """One axis's table: sensor pixel c in ``span`` -> floor(f32(c - span[0]) * f32(scale)) + dst_start,
    kept within the ``dst_len`` grid pixels from ``dst_start`` (rounding may reach one past them)."""
    c = np.arange(length, dtype=np.float64)
    rel = (c - span[0]).astype(np.float32)
    m = np.floor(rel * np.float32(scale)).astype(np.int64) + dst_start
    m = np.clip(m, dst_start, dst_start + dst_len - 1)
    return np.where((c >= span[0]) & (c < span[1]), m, -1).astype(np.int32)


@lru_cache(maxsize=32)
def _cached(width: int, height: int, size: int, fit: Fit, roi: Roi | None) -> ModelGrid:
    x0, y0, w, h = roi if roi is not None else (0, 0, width, height)
    if fit == "stretch":
        xm = _axis(width, (x0, x0 + w), size / w, 0, size)
        ym = _axis(height, (y0, y0 + h), size / h, 0, size)
    elif fit == "letterbox":
        scale = size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        xm = _axis(width, (x0, x0 + w), scale, (size - nw) // 2, nw)
        ym = _axis(height, (y0, y0 + h), scale, (size - nh) // 2, nh)
    elif fit == "crop":
        side = min(w, h)
        cx, cy = x0 + (w - side) / 2, y0 + (h - side) / 2
        xm = _axis(width, (cx, cx + side), size / side, 0, size)
        ym = _axis(height, (cy, cy + side), size / side, 0, size)
    else:
        raise FramesError(f"unknown fit {fit!r}; use 'letterbox', 'crop' or 'stretch'")
    xm.setflags(write=False)
    ym.setflags(write=False)
    return ModelGrid(xm, ym, size)


def check_roi(roi: Roi | None, geometry: Geometry) -> Roi:
    """Validate a region of interest (x, y, width, height in sensor pixels); None means the whole sensor."""
    if roi is None:
        return (0, 0, geometry.width, geometry.height)
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > geometry.width or y + h > geometry.height:
        raise FramesError(
            f"roi={tuple(roi)} (x, y, width, height) must be a non-empty rectangle inside the sensor "
            f"geometry {geometry}; shrink it or leave roi unset"
        )
    return (x, y, w, h)


def model_grid(geometry: Geometry, size: int, fit: Fit = "letterbox", roi: Roi | None = None) -> ModelGrid:
    """The tables mapping ``geometry``'s pixels (or the ROI's, (x, y, width, height) in sensor pixels)
    onto a ``size`` x ``size`` grid: ``letterbox`` keeps the aspect ratio (bars stay empty),
    ``crop`` keeps the central square, ``stretch`` scales each axis on its own (the authors' choice)."""
    if size <= 0:
        raise FramesError(f"the model grid size must be > 0 pixels, got {size}")
    r = None if roi is None else check_roi(roi, geometry)
    return _cached(geometry.width, geometry.height, int(size), fit, r)
