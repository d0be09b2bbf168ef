"""Attention relevance (Chefer et al. 2021) on real open_clip ViTs: the re-run forward matches open_clip,
maps have the frame's shape and are non-negative, and a model built so that its class token attends
to the content puts the relevance where the content is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from eventclip.cli import main
from eventclip.events import Geometry, make_events
from eventclip.explain.explain import explain_events
from eventclip.explain.relevance import ExplainError, forward_with_attention, patch_relevance, to_frame
from eventclip.heads.prompts import PromptSet
from eventclip.model.clip import EventClip
from eventclip.model.configs import TINY_CONFIG


def quadrant_events(geometry: Geometry, quadrant: tuple[int, int], per_pixel: int = 5) -> np.ndarray:
    """``per_pixel`` events on every pixel of one quadrant (column, row) of the sensor, none elsewhere."""
    qw, qh = geometry.width // 2, geometry.height // 2
    xs, ys = np.meshgrid(np.arange(qw) + quadrant[0] * qw, np.arange(qh) + quadrant[1] * qh)
    x = np.repeat(xs.ravel(), per_pixel)
    y = np.repeat(ys.ravel(), per_pixel)
    return make_events(x, y, np.arange(len(x)) % 2, np.arange(len(x)))


@pytest.fixture(scope="module")
def tiny():
    return EventClip.from_clip(TINY_CONFIG, seed=0).eval()


def test_forward_with_attention_matches_open_clip(tiny):
    x = torch.randn(2, 3, 32, 32)
    out, attns = forward_with_attention(tiny.event_encoder, x)
    with torch.no_grad():
        ref = tiny.event_encoder(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert len(attns) == 2 and attns[0].shape == (2, 2, 17, 17)
    torch.testing.assert_close(attns[0].sum(-1), torch.ones(2, 2, 17))


def test_map_has_the_frame_shape_and_is_non_negative(tiny):
    geometry = Geometry(48, 32)
    rng = np.random.default_rng(0)
    n = 3000
    events = make_events(rng.integers(0, 48, n), rng.integers(0, 32, n), rng.integers(0, 2, n), np.arange(n))
    prompts = PromptSet(classes=["cat", "dog", "car"])
    exp = explain_events(tiny, events, geometry, prompts, top_k=3)
    assert exp.relevance.shape == exp.frame.shape == (32, 32)  # counted on the model's 32 px grid
    assert exp.relevance.min() >= 0 and exp.relevance.max() == pytest.approx(1.0)
    assert [lab for lab, _ in exp.labels][0] == exp.target and len(exp.labels) == 3
    other = explain_events(tiny, events, geometry, prompts, target="car")
    assert other.target == "car" and other.relevance.shape == (32, 32)
    sensor_model = EventClip.from_clip(TINY_CONFIG, seed=0, representation={"count_at": "sensor"}).eval()
    at_sensor = explain_events(sensor_model, events, geometry, prompts)
    assert at_sensor.relevance.shape == at_sensor.frame.shape == (32, 48)
    with pytest.raises(ExplainError, match="bird"):
        explain_events(tiny, events, geometry, prompts, target="bird")


def content_attending_vit() -> EventClip:
    """A tiny ViT whose class token attends to patches with events and whose output grows with them.

    Layer norms are identities and the MLPs are off, so the weights read directly: the patch
    embedding's dim 0 is the mean normalised pixel value (positive where events are, negative on
    empty pixels); the class token holds 1 in dim 1. In every head, q = 4·dim1 and k = 4·dim0, so
    the class token's attention goes to content patches; values copy dim 0 into dim 2, which the
    projection reads as output 0. The explained target is output 0.
    """
    model = EventClip.from_clip(TINY_CONFIG, seed=0).eval()
    vis = model.event_encoder
    width, heads = vis.conv1.out_channels, vis.transformer.resblocks[0].attn.num_heads
    hd = width // heads
    with torch.no_grad():
        vis.conv1.weight.zero_()
        vis.conv1.weight[0] = 1.0 / vis.conv1.weight[0].numel()
        vis.class_embedding.zero_()
        vis.class_embedding[1] = 1.0
        vis.positional_embedding.zero_()
        vis.ln_pre, vis.ln_post = nn.Identity(), nn.Identity()
        for blk in vis.transformer.resblocks:
            blk.ln_1, blk.ln_2 = nn.Identity(), nn.Identity()
            blk.mlp[2].weight.zero_()
            blk.mlp[2].bias.zero_()
            w, b = blk.attn.in_proj_weight, blk.attn.in_proj_bias
            w.zero_()
            b.zero_()
            for h in range(heads):
                w[h * hd, 1] = 4.0                  # q: the class token's dim 1
                w[width + h * hd, 0] = 4.0          # k: content (dim 0)
                w[2 * width + h * hd, 0] = 1.0      # v: content value
            blk.attn.out_proj.weight.zero_()
            blk.attn.out_proj.bias.zero_()
            for h in range(heads):
                blk.attn.out_proj.weight[2, h * hd] = 1.0
        vis.proj.zero_()
        vis.proj[2, 0] = 1.0
        vis.proj[1, 1] = 1.0
    return model


@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1), (1, 0)])
def test_relevance_falls_in_the_quadrant_the_class_token_attends(quadrant):
    model = content_attending_vit()
    geometry = Geometry(32, 32)
    rep = model.representation
    frames = rep.frames([quadrant_events(geometry, quadrant)], geometry)
    x = torch.from_numpy(rep.model_input(frames))
    _, attns = forward_with_attention(model.event_encoder, x)
    cls_to_patches = attns[0][0, :, 0, 1:].mean(0).reshape(4, 4)
    qs = slice(quadrant[1] * 2, quadrant[1] * 2 + 2), slice(quadrant[0] * 2, quadrant[0] * 2 + 2)
    assert float(cls_to_patches[qs].sum().detach()) > 0.9  # the construction does what it claims
    target = torch.zeros(model.embed_dim)
    target[0] = 1.0
    rel = patch_relevance(model.event_encoder, x, target)
    assert rel.score > 0
    frame_map = to_frame(rel.patches, rep.input_size, frames[0].shape, rep.fit)
    assert frame_map.shape == (32, 32) and frame_map.min() >= 0
    ys, xs = slice(quadrant[1] * 16, quadrant[1] * 16 + 16), slice(quadrant[0] * 16, quadrant[0] * 16 + 16)
    assert frame_map[ys, xs].sum() / frame_map.sum() > 0.9


def test_non_vit_encoder_is_refused():
    with pytest.raises(ExplainError, match="ViT"):
        forward_with_attention(nn.Linear(3, 3), torch.zeros(1, 3))


def test_explain_cli_writes_the_png(tmp_path, capsys):
    from eventclip.io import write_events

    folder = tmp_path / "pkg"
    EventClip.from_clip(TINY_CONFIG, seed=0, representation={"window_us": 1000}).save_pretrained(folder)
    geometry = Geometry(40, 30)
    ev = quadrant_events(geometry, (0, 1))
    ev["t"] = np.sort(np.random.default_rng(1).integers(0, 3000, len(ev)))
    write_events(tmp_path / "rec.raw", ev, geometry)
    (tmp_path / "p.yaml").write_text("classes: [cat, dog, airplane]\n")
    out = tmp_path / "exp.png"
    assert main(["explain", str(tmp_path / "rec.raw"), "--model", str(folder), "--prompts", str(tmp_path / "p.yaml"),
                 "--out", str(out), "--top-k", "2"]) == 0
    assert Image.open(out).size[0] > 300 and "explained" in capsys.readouterr().out
    assert main(["explain", str(tmp_path / "rec.raw"), "--model", str(folder), "--prompts", str(tmp_path / "p.yaml"),
                 "--out", str(out), "--at-us", "999999"]) == 2
    assert "--at-us" in capsys.readouterr().err


def test_shipped_default_model_and_sample_recording():
    from eventclip.data import default_model_path, sample_recording_path
    from eventclip.io import read_events

    model = EventClip.from_pretrained(default_model_path())
    chunk = read_events(sample_recording_path())
    window = chunk.events[chunk.events["t"] < chunk.events["t"][0] + model.representation.window_us]
    exp = explain_events(model, window, chunk.geometry, PromptSet(classes=["aubergine", "chestnut", "the letter a"]))
    assert exp.relevance.shape == exp.frame.shape == chunk.geometry.shape
    assert exp.relevance.min() >= 0 and exp.relevance.max() == pytest.approx(1.0)
