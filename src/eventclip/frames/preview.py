"""Frames as 8-bit images a person can look at (PNG previews of what the encoder sees)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from eventclip.frames.accumulate import Variant


def model_input_to_image(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> Image.Image:
    """One window's normalised model input (3, S, S) back to the RGB image the encoder saw (mean/std undone)."""
    rgb = np.asarray(x, np.float32) * np.asarray(std, np.float32)[:, None, None] \
        + np.asarray(mean, np.float32)[:, None, None]
    return frame_to_image(rgb, "paper", model_view=True)


def frame_to_image(frame: np.ndarray, variant: Variant, model_view: bool = False) -> Image.Image:
    """One frame -> 8-bit image, values mapped linearly (no contrast stretch, so it shows the real input).

    ``paper``: [0, 1) -> gray 0-255; ``authors``: [-1, 1] -> 0-255; ``polarity``: (OFF, ON) ->
    RGB with ON in red and OFF in green. ``model_view`` frames are (3, S, S) un-normalised RGB in [0, 1].
    """
    if model_view:
        rgb = np.clip(np.moveaxis(frame, 0, -1), 0.0, 1.0)
        return Image.fromarray(np.rint(rgb * 255).astype(np.uint8), mode="RGB")
    if variant == "polarity":
        rgb = np.zeros((*frame.shape[1:], 3), np.float32)
        rgb[..., 0] = frame[1]
        rgb[..., 1] = frame[0]
        return Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8), mode="RGB")
    gray = (frame + 1.0) / 2.0 if variant == "authors" else frame
    return Image.fromarray(np.rint(np.clip(gray, 0, 1) * 255).astype(np.uint8), mode="L")
