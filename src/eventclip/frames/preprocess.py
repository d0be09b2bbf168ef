"""The event representation the encoder sees: windows -> frames -> (B, 3, S, S) model input.

:class:`Representation` is recorded in every model card, so training and inference build the
exact same input. Resizing is a pair of resampling matrices (a triangle filter widened when
shrinking, the same weights Pillow's BILINEAR uses), applied as ``Ry @ F @ Rx.T``: the numpy and
torch paths share the weights and differ only in float32 rounding, and letterbox/crop/stretch
are just different matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from eventclip.events import Geometry
from eventclip.frames.accumulate import (
    Events,
    Variant,
    event_frames,
    event_frames_torch,
    frames_from_counts,
    stack_windows,
)
from eventclip.frames.errors import FramesError
from eventclip.frames.grid import Fit, ModelGrid, model_grid

if TYPE_CHECKING:
    import torch

OPENAI_CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def _axis_matrix(in_size: int, out_size: int, src_start: float, src_len: float, dst_start: int,
                 dst_len: int) -> np.ndarray:
    """(out_size, in_size) float64 weights mapping source span [src_start, +src_len) onto output
    pixels [dst_start, +dst_len); rows outside that span stay zero (letterbox bars)."""
    m = np.zeros((out_size, in_size), dtype=np.float64)
    scale = src_len / dst_len
    filterscale = max(scale, 1.0)
    for i in range(dst_len):
        center = src_start + (i + 0.5) * scale
        lo = max(int(np.floor(center - filterscale + 0.5)), 0)
        hi = min(int(np.floor(center + filterscale + 0.5)), in_size)
        j = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((j + 0.5 - center) / filterscale), 0.0, None)
        if w.sum() == 0:
            j = np.array([min(max(int(center), 0), in_size - 1)])
            w = np.ones(1)
        m[dst_start + i, j] = w / w.sum()
    return m


@lru_cache(maxsize=32)
def resize_matrices(height: int, width: int, size: int, fit: Fit) -> tuple[np.ndarray, np.ndarray]:
    """Row and column resampling matrices (size x height, size x width; float32) for one frame size."""
    if fit == "stretch":
        ry = _axis_matrix(height, size, 0.0, height, 0, size)
        rx = _axis_matrix(width, size, 0.0, width, 0, size)
    elif fit == "letterbox":
        scale = size / max(width, height)
        nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
        ry = _axis_matrix(height, size, 0.0, height, (size - nh) // 2, nh)
        rx = _axis_matrix(width, size, 0.0, width, (size - nw) // 2, nw)
    elif fit == "crop":
        side = min(width, height)
        ry = _axis_matrix(height, size, (height - side) / 2, side, 0, size)
        rx = _axis_matrix(width, size, (width - side) / 2, side, 0, size)
    else:
        raise FramesError(f"unknown fit {fit!r}; use 'letterbox', 'crop' or 'stretch'")
    return ry.astype(np.float32), rx.astype(np.float32)


@lru_cache(maxsize=32)
def _resize_matrices_torch(height: int, width: int, size: int, fit: Fit,
                           device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`resize_matrices` as tensors kept on ``device``, so a live GPU loop copies them once."""
    import torch

    ry, rx = resize_matrices(height, width, size, fit)
    return torch.from_numpy(ry).to(device), torch.from_numpy(rx).to(device)


CountAt = Literal["model", "sensor"]


class Representation(BaseModel):
    """How events become the encoder's input; stored in the model card beside the weights.

    The steps, in order (each names the field that controls it):

    1. **Where events are counted** (``count_at``): ``model`` maps each event's (x, y) onto the
       model's ``input_size`` grid first (by ``fit``, inside ``roi``; :mod:`eventclip.frames.grid`)
       and counts there; ``sensor`` counts at sensor resolution (inside ``roi``) and resizes the
       normalised frame in step 4, which leaves a large sensor's frame nearly blank (kept for
       packages made before ``count_at`` existed).
    2. **Counts per pixel**: summed over polarities for ``paper``; per polarity (OFF, ON) for
       ``authors`` and ``polarity``. Optional hot-pixel handling: ``clip_percentile`` clips each
       channel at that percentile of its non-zero counts; ``clip_nonzero_mean`` clips each window
       at the mean of its non-zero counts (the authors' ``remove_hot_pixels``); a
       ``hot_pixel_mask`` (Python API) drops the events of masked sensor pixels.
    3. **Normalisation** (``variant``): ``paper`` = E / (max E + 1), the paper's formula;
       ``authors`` = each polarity / (its max + 1), mapped to [-1, 1] and averaged (the authors'
       released code, which their checkpoints expect); ``polarity`` = each polarity / (its max + 1)
       as 2 channels, fed to the model as (ON, OFF, mean).
    4. **Resize** to ``input_size`` by ``fit`` (letterbox, crop, stretch): a no-op when counted on
       the model's grid.
    5. **Input range**: 3 channels, then (x - ``mean``) / ``std`` per channel (CLIP's image
       normalisation by default; 0 and 1 for the authors' checkpoints, which never apply it).

    ``window_us`` is the default window length (µs); ``input_size`` the model's square resolution
    (pixels); ``roi`` = (x, y, width, height) in sensor pixels.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: Variant = "paper"
    window_us: int = Field(33_000, gt=0)
    input_size: int = Field(224, gt=0)
    fit: Fit = "letterbox"
    count_at: CountAt = "model"
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD
    clip_percentile: float | None = Field(None, gt=0, le=100)
    clip_nonzero_mean: bool = False
    roi: tuple[int, int, int, int] | None = None

    @classmethod
    def authors(cls, input_size: int = 224, **fields: Any) -> Representation:
        """The preprocessing of Jeong et al.'s released code, which their ``vitb.pt``/``vitl.pt`` expect:
        coordinates stretched onto the input grid, counts per polarity, each / (max + 1), mapped to
        [-1, 1] and averaged, no CLIP mean/std. ``fields`` override (e.g. ``window_us``)."""
        preset: dict[str, Any] = {"variant": "authors", "count_at": "model", "fit": "stretch", "mean": (0.0, 0.0, 0.0),
                                  "std": (1.0, 1.0, 1.0), "input_size": input_size}
        return cls(**(preset | fields))

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError("every std must be > 0 (it divides the input)")
        return v

    @field_validator("roi")
    @classmethod
    def _roi_shape(cls, v: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if v is not None and (v[0] < 0 or v[1] < 0 or v[2] <= 0 or v[3] <= 0):
            raise ValueError("roi is (x, y, width, height) in sensor pixels: x, y >= 0 and width, height > 0")
        return v

    @property
    def channels(self) -> int:
        """Channels per frame: 2 for ``polarity``, else 1."""
        return 2 if self.variant == "polarity" else 1

    def grid(self, geometry: Geometry) -> ModelGrid | None:
        """Where ``geometry``'s pixels land on the model's grid when ``count_at`` is ``model``, else None."""
        if self.count_at == "sensor":
            return None
        return model_grid(geometry, self.input_size, self.fit, self.roi)

    def _counting(self, geometry: Geometry) -> dict[str, Any]:
        """The keyword arguments the accumulate functions take for this representation and sensor."""
        grid = self.grid(geometry)
        return {"variant": self.variant, "clip_percentile": self.clip_percentile,
                "clip_nonzero_mean": self.clip_nonzero_mean, "grid": grid, "roi": self.roi if grid is None else None}

    def frames(
        self, events_list: Sequence[Events], geometry: Geometry, hot_pixel_mask: np.ndarray | None = None
    ) -> np.ndarray:
        """One frame per window: float32 (B, H, W), or (B, 2, H, W) for ``polarity``.

        H, W are the model's ``input_size`` when counting on its grid, else the sensor's (or the ROI's).
        Each window's events are an array or its pieces (:attr:`~eventclip.frames.windows.Window.parts`).
        """
        events, offsets = stack_windows(events_list)
        return event_frames(events, geometry, offsets, hot_pixel_mask=hot_pixel_mask, **self._counting(geometry))

    def frames_from_counts(
        self, counts: np.ndarray, geometry: Geometry, hot_pixel_mask: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`frames` from per-window counts already made (uint32 (B, H, W), or (B, 2, H, W) unless
        ``paper``), counted on :meth:`grid` when it is not None."""
        return frames_from_counts(counts, geometry, hot_pixel_mask=hot_pixel_mask, **self._counting(geometry))

    def frames_torch(
        self,
        events: Events | torch.Tensor,
        geometry: Geometry,
        offsets: np.ndarray | Sequence[int] | torch.Tensor | None = None,
        hot_pixel_mask: np.ndarray | torch.Tensor | None = None,
        device: str | torch.device | None = None,
    ) -> torch.Tensor:
        """Torch twin of :meth:`frames` for a batch given as events + offsets; stays on the device."""
        return event_frames_torch(events, geometry, offsets, hot_pixel_mask=hot_pixel_mask, device=device,
                                  **self._counting(geometry))

    def _check_frames(self, shape: tuple[int, ...]) -> tuple[int, int]:
        want = 4 if self.channels == 2 else 3
        if len(shape) != want or (want == 4 and shape[1] != 2):
            layout = "(B, 2, H, W)" if want == 4 else "(B, H, W)"
            raise FramesError(f"variant {self.variant!r} expects frames shaped {layout}, got {tuple(shape)}")
        return shape[-2], shape[-1]

    def model_input(self, frames: np.ndarray) -> np.ndarray:
        """Resize to ``input_size`` (per ``fit``), make 3 channels, normalise: float32 (B, 3, S, S)."""
        h, w = self._check_frames(frames.shape)
        f = np.asarray(frames, dtype=np.float32)
        if self.channels == 1:
            f = f[:, None]
        if (h, w) == (self.input_size, self.input_size):  # counted on the model's grid: nothing to resize
            resized = f
        else:
            ry, rx = resize_matrices(h, w, self.input_size, self.fit)
            resized = ry @ (f @ rx.T)
        if self.channels == 1:
            rgb = np.repeat(resized, 3, axis=1)
        else:
            rgb = np.concatenate([resized[:, 1:2], resized[:, 0:1],
                                  (resized[:, 0:1] + resized[:, 1:2]) * np.float32(0.5)], axis=1)
        mean = np.asarray(self.mean, dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.std, dtype=np.float32)[None, :, None, None]
        return np.ascontiguousarray((rgb - mean) / std)

    def model_input_torch(self, frames: torch.Tensor) -> torch.Tensor:
        """Torch twin of :meth:`model_input`; the result stays on ``frames``' device."""
        import torch

        h, w = self._check_frames(tuple(frames.shape))
        dev = frames.device
        f = frames.to(torch.float32)
        if self.channels == 1:
            f = f[:, None]
        if (h, w) == (self.input_size, self.input_size):
            resized = f
        else:
            ry, rx = _resize_matrices_torch(h, w, self.input_size, self.fit, str(dev))
            resized = ry @ (f @ rx.T)
        if self.channels == 1:
            rgb = resized.expand(-1, 3, -1, -1)
        else:
            rgb = torch.cat([resized[:, 1:2], resized[:, 0:1], (resized[:, 0:1] + resized[:, 1:2]) * 0.5], dim=1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=dev)[None, :, None, None]
        std = torch.tensor(self.std, dtype=torch.float32, device=dev)[None, :, None, None]
        return ((rgb - mean) / std).contiguous()

    def __call__(self, events_list: Sequence[Events], geometry: Geometry,
                 hot_pixel_mask: np.ndarray | None = None) -> np.ndarray:
        """Events of B windows -> model input (B, 3, S, S) float32."""
        return self.model_input(self.frames(events_list, geometry, hot_pixel_mask))
