"""Event counting and frame normalisation: numba == numpy == torch (CPU here, CUDA when present),
all equal to a slow pure-Python reference; options (polarity, hot pixels, ROI, clipping); errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventclip.events import Geometry, make_events
from eventclip.frames.accumulate import (
    count_events,
    count_events_reference,
    count_events_torch,
    event_frames,
    event_frames_torch,
    events_to_torch,
    stack_windows,
)
from eventclip.frames.errors import EventOutsideGeometryError, FramesError

GEOM = Geometry(37, 23)  # odd sizes catch row/column mix-ups


def _random_events(n: int, geometry: Geometry = GEOM, seed: int = 0, polarities=(0, 1)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(
        rng.integers(0, geometry.width, n),
        rng.integers(0, geometry.height, n),
        rng.choice(polarities, n),
        np.sort(rng.integers(0, 1_000_000, n)),
    )


def _python_counts(events, geometry, offsets, per_polarity):
    """Slow, obvious reference: loop over windows and events."""
    b = len(offsets) - 1
    out = np.zeros((b, 2, geometry.height, geometry.width), dtype=np.int64)
    for w in range(b):
        for i in range(offsets[w], offsets[w + 1]):
            e = events[i]
            out[w, 1 if e["p"] > 0 else 0, e["y"], e["x"]] += 1
    return out if per_polarity else out.sum(axis=1)


@pytest.mark.parametrize("per_polarity", [False, True])
def test_all_backends_equal_the_python_reference(per_polarity):
    ev = _random_events(3000, polarities=(0, 1, -1))
    offsets = [0, 700, 700, 2500, 3000]  # includes an empty window
    want = _python_counts(ev, GEOM, offsets, per_polarity)
    for got in (
        count_events_reference(ev, GEOM, offsets, per_polarity=per_polarity),
        count_events(ev, GEOM, offsets, per_polarity=per_polarity),
        count_events_torch(ev, GEOM, offsets, per_polarity=per_polarity).numpy(),
    ):
        assert got.shape == want.shape
        assert np.array_equal(got, want)


def test_batched_call_equals_one_call_per_window():
    ev = _random_events(2000, seed=3)
    windows = [ev[:10], ev[10:10], ev[10:1500], ev[1500:]]
    events, offsets = stack_windows(windows)
    batched = count_events(events, GEOM, offsets)
    for b, w in enumerate(windows):
        assert np.array_equal(batched[b], count_events(w, GEOM)[0])


@pytest.mark.parametrize("variant", ["paper", "authors", "polarity"])
@pytest.mark.parametrize("clip", [None, 90.0])
def test_frames_agree_across_backends_to_1e_6(variant, clip):
    ev = _random_events(5000, seed=1)
    ev["x"][:400] = 5  # a hot pixel
    ev["y"][:400] = 7
    offsets = [0, 2000, 2000, 5000]
    mask = np.zeros(GEOM.shape, bool)
    mask[3, 4] = True
    kwargs = dict(variant=variant, clip_percentile=clip, hot_pixel_mask=mask, roi=(2, 1, 30, 20))
    a = event_frames(ev, GEOM, offsets, backend="numba", **kwargs)
    b = event_frames(ev, GEOM, offsets, backend="numpy", **kwargs)
    c = event_frames_torch(ev, GEOM, offsets, **kwargs).numpy()
    assert a.dtype == np.float32 and a.shape[-2:] == (20, 30)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    np.testing.assert_allclose(a, c, atol=1e-6, rtol=0)


def test_paper_and_authors_formulas():
    g = Geometry(3, 2)
    # pixel (0,0): 3 OFF + 1 ON; pixel (2,1): 2 ON
    ev = make_events([0, 0, 0, 0, 2, 2], [0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1], range(6))
    paper = event_frames(ev, g, variant="paper")[0]
    assert paper[0, 0] == pytest.approx(4 / 5) and paper[1, 2] == pytest.approx(2 / 5) and paper[0, 1] == 0
    pol = event_frames(ev, g, variant="polarity")[0]
    assert pol[0, 0, 0] == pytest.approx(3 / 4) and pol[1, 0, 0] == pytest.approx(1 / 3)
    assert pol[1, 1, 2] == pytest.approx(2 / 3) and pol[0, 1, 2] == 0
    authors = event_frames(ev, g, variant="authors")[0]
    want = ((pol[0] * 2 - 1) + (pol[1] * 2 - 1)) / 2
    np.testing.assert_allclose(authors, want, atol=1e-7)
    assert authors[0, 1] == pytest.approx(-1.0)  # no events -> -1 in the authors' mapping


def test_empty_window_gives_zero_frame():
    f = event_frames(make_events([], [], [], []), GEOM, [0, 0])
    assert f.shape == (1, GEOM.height, GEOM.width) and not f.any()


def test_hot_pixel_mask_and_percentile_clipping():
    ev = make_events([1] * 100 + [2, 3, 4], [1] * 100 + [2, 2, 2], [1] * 103, range(103))
    g = Geometry(6, 4)
    plain = event_frames(ev, g)[0]
    assert plain[2, 2] == pytest.approx(1 / 101)  # the hot pixel squashes the rest
    mask = np.zeros(g.shape, bool)
    mask[1, 1] = True
    masked = event_frames(ev, g, hot_pixel_mask=mask)[0]
    assert masked[1, 1] == 0 and masked[2, 2] == pytest.approx(1 / 2)
    clipped = event_frames(ev, g, clip_percentile=50)[0]
    assert clipped[1, 1] == pytest.approx(1 / 2) and clipped[2, 2] == pytest.approx(1 / 2)


def test_roi_crops_before_normalising():
    ev = make_events([0, 0, 0, 5], [0, 0, 0, 3], [1, 1, 1, 1], range(4))
    g = Geometry(8, 6)
    f = event_frames(ev, g, roi=(4, 2, 3, 2))[0]
    assert f.shape == (2, 3)
    assert f[1, 1] == pytest.approx(1 / 2)  # the 3 events at (0, 0) lie outside the ROI


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("field, value", [("x", GEOM.width), ("y", GEOM.height)])
def test_event_outside_geometry_is_a_clear_error(backend, field, value):
    ev = _random_events(50)
    ev[field][17] = value
    fn = {"numpy": count_events_reference, "numba": count_events, "torch": count_events_torch}[backend]
    with pytest.raises(EventOutsideGeometryError, match=r"event 17 .*outside the sensor geometry 37x23") as info:
        fn(ev, GEOM)
    assert info.value.index == 17


def test_bad_arguments():
    ev = _random_events(10)
    with pytest.raises(FramesError, match="offsets"):
        count_events(ev, GEOM, [0, 5])
    with pytest.raises(FramesError, match="roi"):
        event_frames(ev, GEOM, roi=(30, 0, 10, 5))
    with pytest.raises(FramesError, match="hot_pixel_mask has shape"):
        event_frames(ev, GEOM, hot_pixel_mask=np.zeros((GEOM.width, GEOM.height), bool))
    with pytest.raises(FramesError, match="unknown frame variant"):
        event_frames(ev, GEOM, variant="sum")  # type: ignore[arg-type]
    with pytest.raises(FramesError, match="missing fields"):
        count_events(np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2")]), GEOM)
    with pytest.raises(FramesError, match="structured numpy array"):
        count_events(np.zeros((3, 4), np.int64), GEOM)


def test_packed_event_arrays_from_concatenate_are_accepted():
    ev = _random_events(300)
    packed = np.concatenate([ev[:100], ev[100:]])  # numpy drops EVENT_DTYPE's padding here
    assert packed.dtype != ev.dtype
    assert np.array_equal(count_events(packed, GEOM), count_events(ev, GEOM))


def test_torch_accepts_raw_tensor_and_tensor_offsets():
    ev = _random_events(500, seed=4)
    raw = events_to_torch(ev)
    got = count_events_torch(raw, GEOM, torch.tensor([0, 100, 500]), per_polarity=True)
    assert np.array_equal(got.numpy(), count_events(ev, GEOM, [0, 100, 500], per_polarity=True))


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["paper", "authors", "polarity"])
def test_cuda_frames_match_numba_and_stay_on_device(variant):
    ev = _random_events(200_000, geometry=Geometry(1280, 720), seed=5)
    g = Geometry(1280, 720)
    offsets = [0, 50_000, 50_000, 200_000]
    counts = count_events_torch(ev, g, offsets, per_polarity=True, device="cuda")
    assert counts.is_cuda
    assert np.array_equal(counts.cpu().numpy(), count_events(ev, g, offsets, per_polarity=True))
    f = event_frames_torch(ev, g, offsets, variant=variant, clip_percentile=99.0, device="cuda")
    assert f.is_cuda
    np.testing.assert_allclose(f.cpu().numpy(), event_frames(ev, g, offsets, variant=variant, clip_percentile=99.0),
                               atol=1e-6, rtol=0)


def test_torch_without_check_drops_out_of_range_events_into_no_window():
    ev = _random_events(400, seed=6)
    ev["y"][5] = GEOM.height + 3  # would alias into the next window's plane without the trash bin
    good = np.ones(len(ev), bool)
    good[5] = False
    got = count_events_torch(ev, GEOM, [0, 200, 400], check=False).numpy()
    want = count_events_reference(ev[good], GEOM, [0, 199, 399])
    assert np.array_equal(got, want)


def test_paper_frames_from_total_counts_equal_those_from_polarity_counts():
    from eventclip.frames.accumulate import normalise_counts, normalise_counts_torch

    ev = _random_events(2000, seed=7)
    per = count_events(ev, GEOM, [0, 900, 2000], per_polarity=True)
    total = count_events(ev, GEOM, [0, 900, 2000])[:, None]
    np.testing.assert_array_equal(normalise_counts(per, "paper"), normalise_counts(total, "paper"))
    np.testing.assert_array_equal(normalise_counts_torch(torch.from_numpy(total.astype(np.float32)), "paper").numpy(),
                                  normalise_counts(per, "paper"))
    with pytest.raises(FramesError, match=r"\(B, 2, H, W\)"):
        normalise_counts(total, "authors")


@pytest.mark.parametrize("q", [1.0, 33.3, 50.0, 90.0, 99.5, 100.0])
def test_torch_percentile_equals_numpy_percentile_of_nonzero_pixels(q):
    from eventclip.frames.accumulate import _nonzero_percentile_torch

    rng = np.random.default_rng(int(q * 10))
    c = (rng.integers(0, 5, (3, 2, 7, 9)) * rng.integers(0, 50, (3, 2, 7, 9))).astype(np.float32)
    c[1, 0] = 0  # a channel without events: nothing to clip
    got = _nonzero_percentile_torch(torch.from_numpy(c), q).numpy()[:, :, 0, 0]
    for i in range(3):
        for j in range(2):
            nz = c[i, j][c[i, j] > 0].astype(np.float64)
            want = np.float32(np.percentile(nz, q)) if nz.size else np.inf
            assert got[i, j] == want
