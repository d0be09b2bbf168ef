"""Training augmentations, as the paper's authors used them (``data/imagenet_dataset.py``, ``augmentation.py``).

Event-level (before frames are made): random time flip (reverse time and invert polarity),
random shift of up to ``max_shift_px`` pixels (events pushed off the sensor are dropped, as the
authors do), and correlated noise events (jittered copies of real events). View-level (on the
paired image and event frame together, so pairs stay aligned): RandomResizedCrop with scale
0.45–1 and a horizontal flip. All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and magnitudes; pixels refer to the sensor (events) or the model input (views)."""

    time_flip_p: float = 0.5
    max_shift_px: int = 20
    noise: bool = True
    noise_xy_std_px: float = 1.5
    noise_t_std_us: float = 1000.0
    crop_scale: tuple[float, float] = (0.45, 1.0)
    hflip_p: float = 0.5
    sketch_p: float = 0.0


def edge_sketch(image):
    """Sobel gradient magnitude of an RGB image tensor (3, H, W) in [0, 1], as white edges on black, 3 channels.

    Stage-1 augmentation only (never applied to events): a CLIP trained on millions of images has
    seen drawings and outlines, ours has seen 444 pictures; showing it outlines of the same pictures
    gives f_I (and so f_E's starting point) features that also respond to edge maps, which is what
    event frames of moving objects look like.
    """
    import torch
    import torch.nn.functional as F

    gray = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)[None]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])[None, None]
    gx = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kx)
    gy = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kx.transpose(-1, -2))
    mag = (gx**2 + gy**2).sqrt()[0]
    mag = mag / mag.amax().clamp(min=1e-6)
    return mag.expand(3, -1, -1).contiguous()


def image_view(image, cfg: AugmentConfig, rng: np.random.Generator):
    """One RandomResizedCrop + horizontal flip of an image tensor (C, S, S), resized back to S."""
    import torch.nn.functional as F

    s = image.shape[-1]
    top, left, h, w = crop_box(s, s, cfg.crop_scale, rng)
    y = F.interpolate(image[None, :, top:top + h, left:left + w], size=(s, s), mode="bilinear", align_corners=False)[0]
    return y.flip(-1) if rng.random() < cfg.hflip_p else y


def time_flip(events: np.ndarray) -> np.ndarray:
    """Reverse time (t -> t_last - t, order reversed) and invert polarity: the same scene played backwards."""
    out = events[::-1].copy()
    if len(out):
        out["t"] = events["t"][-1] - out["t"] + events["t"][0]
        out["p"] = 1 - out["p"]
    return out


def shift(events: np.ndarray, geometry: Geometry, dx: int, dy: int) -> np.ndarray:
    """Move events by (dx, dy) pixels; events that leave the sensor are dropped."""
    x = events["x"].astype(np.int64) + dx
    y = events["y"].astype(np.int64) + dy
    keep = (x >= 0) & (x < geometry.width) & (y >= 0) & (y < geometry.height)
    out = events[keep].copy()
    out["x"] = x[keep]
    out["y"] = y[keep]
    return out


def correlated_noise(events: np.ndarray, geometry: Geometry, rng: np.random.Generator, xy_std: float,
                     t_std_us: float) -> np.ndarray:
    """Add between 100 and 5000 (at most n−1) jittered copies of real events, as the authors do; time-sorted.

    Recordings with fewer than 1000 events are returned unchanged (the authors' rule).
    """
    n = len(events)
    if n < 1000:
        return events
    k = int(rng.integers(min(100, n - 1), min(5000, n)))
    src = events[rng.choice(n, size=k, replace=False)]
    extra = np.empty(k, dtype=EVENT_DTYPE)
    extra["x"] = np.clip(np.rint(src["x"] + rng.normal(0, xy_std, k)), 0, geometry.width - 1)
    extra["y"] = np.clip(np.rint(src["y"] + rng.normal(0, xy_std, k)), 0, geometry.height - 1)
    extra["p"] = src["p"]
    extra["t"] = src["t"] + np.rint(rng.normal(0, t_std_us, k)).astype(np.int64)
    out = np.empty(n + k, dtype=EVENT_DTYPE)  # np.concatenate would drop EVENT_DTYPE's padding
    out[:n] = events
    out[n:] = extra
    return out[np.argsort(out["t"], kind="stable")]


def augment_events(events: np.ndarray, geometry: Geometry, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """The authors' event pipeline: time flip, then shift, then correlated noise."""
    if rng.random() < cfg.time_flip_p:
        events = time_flip(events)
    if cfg.max_shift_px > 0:
        dx, dy = rng.integers(-cfg.max_shift_px, cfg.max_shift_px + 1, size=2)
        events = shift(events, geometry, int(dx), int(dy))
    if cfg.noise:
        events = correlated_noise(events, geometry, rng, cfg.noise_xy_std_px, cfg.noise_t_std_us)
    return events


def crop_box(height: int, width: int, scale: tuple[float, float], rng: np.random.Generator,
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box (top, left, h, w) drawn from ``rng``; whole image after 10 misses."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w = int(round(np.sqrt(target * aspect)))
        h = int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


def paired_views(image, frame, cfg: AugmentConfig, rng: np.random.Generator):
    """Apply one RandomResizedCrop + horizontal flip to an image and an event frame (tensors (C, S, S)).

    Both are resized back to their own size with bilinear interpolation; the same box (relative)
    is used for both so the pair keeps showing the same content.
    """
    import torch.nn.functional as F

    s_img, s_evt = image.shape[-1], frame.shape[-1]
    top, left, h, w = crop_box(s_img, s_img, cfg.crop_scale, rng)
    flip = rng.random() < cfg.hflip_p

    def view(x, size):
        r = size / s_img
        t, l_, hh, ww = int(top * r), int(left * r), max(1, int(h * r)), max(1, int(w * r))
        y = x[:, t:t + hh, l_:l_ + ww][None]
        y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)[0]
        return y.flip(-1) if flip else y

    return view(image, s_img), view(frame, s_evt)
