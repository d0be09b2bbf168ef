"""The authors' augmentations on real event arrays, and the paired crop."""

from __future__ import annotations

import numpy as np
import torch

from eventclip.datasets import augment as A
from eventclip.events import EVENT_DTYPE, Geometry, make_events

GEO = Geometry(32, 24)


def _events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 32, n), rng.integers(0, 24, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(100, 10_000, n)))


def test_time_flip_reverses_time_and_polarity():
    ev = _events(50)
    out = A.time_flip(ev)
    assert out.dtype == EVENT_DTYPE and np.all(np.diff(out["t"]) >= 0)
    assert out["t"][0] == ev["t"][0] and out["t"][-1] == ev["t"][-1]
    np.testing.assert_array_equal(out["x"], ev["x"][::-1])
    np.testing.assert_array_equal(out["p"], 1 - ev["p"][::-1])


def test_shift_moves_and_drops_outside():
    ev = make_events([0, 10, 31], [0, 5, 23], [1, 0, 1], [1, 2, 3])
    out = A.shift(ev, GEO, 2, -1)
    assert out.tolist() == [(12, 4, 0, 2)]


def test_correlated_noise_adds_nearby_events_and_keeps_order():
    ev = _events(2000)
    out = A.correlated_noise(ev, GEO, np.random.default_rng(1), 1.5, 1000.0)
    assert out.dtype == EVENT_DTYPE
    assert 2000 + 100 <= len(out) < 2000 + 2000 and np.all(np.diff(out["t"]) >= 0)
    assert out["x"].max() < 32 and out["y"].max() < 24
    small = _events(500)
    assert A.correlated_noise(small, GEO, np.random.default_rng(1), 1.5, 1000.0) is small


def test_crop_box_respects_scale_and_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = A.crop_box(64, 64, (0.45, 1.0), rng)
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64
        assert 0.45 * 4096 * 0.8 <= h * w <= 4096


def test_paired_views_apply_the_same_geometry_to_both():
    img = torch.zeros(3, 64, 64)
    img[:, :, :8] = 1.0  # a bright band on the left
    frame = img.clone()
    rng = np.random.default_rng(3)
    cfg = A.AugmentConfig(hflip_p=1.0, crop_scale=(1.0, 1.0))
    a, b = A.paired_views(img, frame, cfg, rng)
    torch.testing.assert_close(a, b)
    assert a[:, :, -4:].mean() > 0.9 and a[:, :, :4].mean() < 0.1  # flipped: the band is now on the right
