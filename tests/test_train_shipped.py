"""The shipped default model, sample recording and prompts: present, small, consistent, usable."""

from __future__ import annotations

import json

import numpy as np
import torch

from eventclip import data
from eventclip.events import as_events
from eventclip.io import read_events


def test_default_model_loads_and_its_card_is_honest():
    from eventclip.model.clip import EventClip

    folder = data.default_model_path()
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 25 * 2**20
    model = EventClip.from_pretrained(folder)
    card = model.card
    assert len(card.training["classes"]) == 74 and card.training["unseen_classes"]
    assert card.training["command"].startswith("eventclip train --recipe default")
    assert 0.0 < card.accuracy["zero_shot_unseen_top1"] <= 1.0
    assert any("OpenMoji" in c for c in card.training["credits"])


def test_sample_recording_matches_its_labels_and_the_model_classes():
    path = data.sample_recording_path()
    assert path.suffix == ".raw" and path.stat().st_size < 5 * 2**20
    info = json.loads(data.sample_labels_path().read_text())
    chunk = read_events(path)
    ev = as_events(chunk.events)
    assert len(ev) == info["events"] and (chunk.geometry.width, chunk.geometry.height) == tuple(info["geometry"])
    card = json.loads((data.default_model_path() / "model.json").read_text())
    labels = [s["label"] for s in info["segments"]]
    assert len(set(labels)) >= 5 and set(labels) <= set(card["training"]["classes"])
    assert set(labels) & set(card["training"]["unseen_classes"])  # it shows zero-shot classes too
    for s in info["segments"]:
        assert np.count_nonzero((ev["t"] >= s["t_start_us"]) & (ev["t"] < s["t_end_us"])) > 1000


def test_default_prompts_cover_the_model_classes_and_encode_the_sample():
    import yaml

    from eventclip.datasets.base import PROMPT_TEMPLATES
    from eventclip.model.clip import EventClip

    prompts = yaml.safe_load(data.default_prompts_path().read_text())
    model = EventClip.from_pretrained(data.default_model_path())
    assert prompts["classes"] == model.card.training["texts"]
    assert prompts["templates"] == list(PROMPT_TEMPLATES)
    chunk = read_events(data.sample_recording_path())
    ev = as_events(chunk.events)
    info = json.loads(data.sample_labels_path().read_text())
    windows = [ev[(ev["t"] >= s["t_start_us"]) & (ev["t"] < s["t_end_us"])] for s in info["segments"]]
    emb = model.encode_frames(torch.from_numpy(model.representation(windows, chunk.geometry)))
    assert emb.shape == (len(windows), model.embed_dim) and torch.isfinite(emb).all()
