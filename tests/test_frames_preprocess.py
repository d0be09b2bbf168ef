"""Model-input preprocessing: Representation config, resize (checked against Pillow), letterbox /
crop geometry, 3-channel replication, CLIP normalisation, numpy == torch."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import torch
from PIL import Image

from eventclip.events import Geometry, make_events
from eventclip.frames import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, Representation
from eventclip.frames.errors import FramesError

MEAN = np.asarray(OPENAI_CLIP_MEAN, np.float32)[:, None, None]
STD = np.asarray(OPENAI_CLIP_STD, np.float32)[:, None, None]


def _unnormalise(x: np.ndarray) -> np.ndarray:
    return x * STD + MEAN


def test_defaults_and_model_card_round_trip():
    r = Representation()
    assert (r.variant, r.window_us, r.input_size, r.fit) == ("paper", 33_000, 224, "letterbox")
    again = Representation.model_validate_json(r.model_dump_json())
    assert again == r


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"window_us": 0}, "window_us"),
        ({"input_size": -1}, "input_size"),
        ({"variant": "voxel"}, "variant"),
        ({"fit": "pad"}, "fit"),
        ({"clip_percentile": 0}, "clip_percentile"),
        ({"clip_percentile": 101}, "clip_percentile"),
        ({"roi": (0, 0, 0, 5)}, "roi"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
        ({"window": 5}, "window"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        Representation(**kwargs)


def test_stretch_resize_matches_pillow_bilinear():
    rng = np.random.default_rng(0)
    frame = rng.random((48, 80), dtype=np.float32)
    r = Representation(fit="stretch", input_size=32)
    got = _unnormalise(r.model_input(frame[None])[0])
    want = np.asarray(Image.fromarray(frame, mode="F").resize((32, 32), Image.Resampling.BILINEAR))
    for c in range(3):
        np.testing.assert_allclose(got[c], want, atol=1e-5)


def test_upscaling_matches_pillow_too():
    frame = np.random.default_rng(1).random((10, 13), dtype=np.float32)
    r = Representation(fit="stretch", input_size=40)
    got = _unnormalise(r.model_input(frame[None])[0])[0]
    want = np.asarray(Image.fromarray(frame, mode="F").resize((40, 40), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_letterbox_keeps_aspect_and_pads_with_no_events():
    frame = np.ones((1, 480, 640), np.float32)
    x = _unnormalise(Representation(fit="letterbox").model_input(frame)[0])
    # 640x480 -> 224x168, centred: 28 rows of bars above and below
    np.testing.assert_allclose(x[:, :28], 0, atol=1e-6)
    np.testing.assert_allclose(x[:, 196:], 0, atol=1e-6)
    np.testing.assert_allclose(x[:, 28:196], 1, atol=1e-5)


def test_crop_keeps_the_centre_square():
    frame = np.zeros((1, 100, 200), np.float32)
    frame[0, :, :40] = 1  # only outside the central 100x100 square
    frame[0, 40:60, 90:110] = 0.5
    x = _unnormalise(Representation(fit="crop", input_size=100).model_input(frame)[0])
    assert np.allclose(x[:, :, :5], 0, atol=1e-6)
    np.testing.assert_allclose(x[0, 45:55, 45:55], 0.5, atol=1e-5)


def test_one_channel_variants_replicate_and_polarity_maps_on_off_mean():
    f = np.random.default_rng(2).random((2, 30, 40), dtype=np.float32)
    x = _unnormalise(Representation(input_size=16).model_input(f))
    assert x.shape == (2, 3, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-5)
    np.testing.assert_allclose(x[:, 0], x[:, 2], atol=1e-5)
    p = np.random.default_rng(3).random((2, 2, 30, 40), dtype=np.float32)
    r = Representation(variant="polarity", input_size=16, fit="stretch")
    y = _unnormalise(r.model_input(p))
    off = _unnormalise(Representation(input_size=16, fit="stretch").model_input(p[:, 0]))[:, 0]
    on = _unnormalise(Representation(input_size=16, fit="stretch").model_input(p[:, 1]))[:, 0]
    np.testing.assert_allclose(y[:, 0], on, atol=1e-5)
    np.testing.assert_allclose(y[:, 1], off, atol=1e-5)
    np.testing.assert_allclose(y[:, 2], (on + off) / 2, atol=1e-5)


@pytest.mark.parametrize("variant", ["paper", "authors", "polarity"])
@pytest.mark.parametrize("fit", ["letterbox", "crop", "stretch"])
def test_numpy_and_torch_model_input_agree(variant, fit):
    rng = np.random.default_rng(4)
    g = Geometry(64, 48)
    ev = make_events(rng.integers(0, 64, 4000), rng.integers(0, 48, 4000), rng.integers(0, 2, 4000), np.arange(4000))
    r = Representation(variant=variant, fit=fit, input_size=56, roi=(4, 2, 50, 40), clip_percentile=99)
    frames = r.frames([ev[:1000], ev[1000:]], g)
    tframes = r.frames_torch(ev, g, [0, 1000, 4000])
    np.testing.assert_allclose(frames, tframes.numpy(), atol=1e-6, rtol=0)
    a = r.model_input(frames)
    b = r.model_input_torch(torch.from_numpy(frames))
    assert a.shape == (2, 3, 56, 56) and b.device.type == "cpu"
    np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(r([ev[:1000], ev[1000:]], g), a, atol=0)


def test_wrong_frame_layout_is_refused():
    with pytest.raises(FramesError, match=r"expects frames shaped \(B, H, W\)"):
        Representation().model_input(np.zeros((8, 8), np.float32))
    with pytest.raises(FramesError, match=r"\(B, 2, H, W\)"):
        Representation(variant="polarity").model_input(np.zeros((1, 8, 8), np.float32))


@pytest.mark.gpu
def test_cuda_model_input_stays_on_device_and_matches_cpu():
    f = torch.rand(4, 720, 1280)
    r = Representation()
    got = r.model_input_torch(f.cuda())
    assert got.is_cuda
    np.testing.assert_allclose(got.cpu().numpy(), r.model_input(f.numpy()), atol=1e-4)
