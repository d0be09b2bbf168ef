"""Retrieval: exact cosine index, Recall@k, external (ImageBind-shaped) embeddings, ``eventclip retrieve``."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from eventclip._optional import MissingDependencyError
from eventclip.cli import main
from eventclip.datasets.base import EventSlice
from eventclip.errors import ConfigError
from eventclip.model.clip import EventClip
from eventclip.model.configs import TINY_CONFIG
from eventclip.retrieval.encoders import IMAGEBIND_INPUTS, ImageBindEncoder, embed_event_files, load_external
from eventclip.retrieval.index import EmbeddingIndex
from eventclip.retrieval.metrics import recall_at_k
from eventclip.retrieval.paired import markdown_table, paired_recall
from tests.test_datasets_eval import events_for, write_folder_dataset


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_numpy_index_is_exact_cosine_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    gallery, queries = rng.normal(size=(50, 8)), rng.normal(size=(4, 8))
    index = EmbeddingIndex(3.0 * gallery, [f"g{i}" for i in range(50)], "event", {"model_hash": "abc"})
    res = index.search(queries, k=5)
    sim = unit(queries) @ unit(gallery).T
    assert res.indices.tolist() == np.argsort(-sim, axis=1)[:, :5].tolist()
    np.testing.assert_allclose(res.scores, np.sort(sim, axis=1)[:, ::-1][:, :5], rtol=1e-5)
    assert res.ids[0][0] == f"g{res.indices[0, 0]}"
    assert index.search(queries, k=500).indices.shape == (4, 50)
    loaded = EmbeddingIndex.load(index.save(tmp_path / "i.npz"))
    assert loaded.ids == index.ids and loaded.modality == "event" and loaded.meta == {"model_hash": "abc"}
    np.testing.assert_array_equal(loaded.search(queries, 5).indices, res.indices)
    with pytest.raises(ConfigError, match="8"):
        index.search(np.ones((1, 4)))
    with pytest.raises(ConfigError, match="one id per row"):
        EmbeddingIndex(gallery, ["a"], "event")
    with pytest.raises(ConfigError, match="modality"):
        EmbeddingIndex(gallery, [str(i) for i in range(50)], "smell")
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(ConfigError, match="bad.npz"):
        EmbeddingIndex.load(tmp_path / "bad.npz")


def test_faiss_backend_agrees_with_exact_numpy_search():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    gallery, queries = rng.normal(size=(30, 6)), rng.normal(size=(3, 6))
    ids = [str(i) for i in range(30)]
    exact = EmbeddingIndex(gallery, ids, "text").search(queries, 5)
    approx = EmbeddingIndex(gallery, ids, "text", backend="faiss").search(queries, 5)
    np.testing.assert_array_equal(exact.indices, approx.indices)
    np.testing.assert_allclose(exact.scores, approx.scores, rtol=1e-5, atol=1e-6)


def test_faiss_backend_without_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"eventclip\[faiss\]"):
        EmbeddingIndex(np.eye(3), ["a", "b", "c"], "text", backend="faiss")


def test_recall_at_k_by_hand():
    sim = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.3], [0.3, 0.9, 0.5]])
    # query 0 -> key a (gallery 0 first: rank 0); query 1 -> key b (gallery 1 ranks 2nd); query 2 -> key z (none)
    r = recall_at_k(sim, ["a", "b", "z"], ["a", "b", "c"], ks=(1, 2))
    assert r == {"R@1": pytest.approx(1 / 3), "R@2": pytest.approx(2 / 3)}
    # exclude_self: each row's own item does not count, so the best other same-key item must be found
    labels = [0, 0, 1]
    r = recall_at_k(np.array([[1.0, 0.2, 0.9], [0.5, 1.0, 0.1], [0.1, 0.1, 1.0]]), labels, labels, (1,), True)
    assert r["R@1"] == pytest.approx(1 / 3)  # row 0 finds 2 (wrong), row 1 finds 0 (right), row 2 has no partner


def test_paired_recall_on_constructed_embeddings():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(4, 16))
    labels = np.repeat(np.arange(4), 3)
    events = centres[labels] + 0.01 * rng.normal(size=(12, 16))
    images = events + 0.001 * rng.normal(size=events.shape)
    table = paired_recall(events, labels, centres, images)
    for d in ("event-text", "text-event", "event-event", "event-image", "image-event"):
        assert table[d]["R@1"] == 1.0, d
    assert table["event-text"]["chance_R@1"] == pytest.approx(0.25)
    assert table["event-event"]["chance_R@1"] == pytest.approx(2 / 11)
    single = paired_recall(events[:7], labels[:7], centres, directions=["event-event"])["event-event"]
    assert single["queries"] == 6 and single["no_relevant"] == 1 and single["gallery"] == 6  # class 2 has one
    assert single["R@1"] == 1.0
    no_images = paired_recall(events, labels, centres)
    assert set(no_images["skipped"]) == {"event-image", "image-event"}
    md = markdown_table(no_images)
    assert "| event-text | 12 | 4 | 100.0 |" in md and "skipped" in md


class RandomImageBind(nn.Module):
    """Random weights, ImageBind's call signature and shapes: {modality: inputs} -> {modality: (B, 1024)}."""

    def __init__(self, dim: int = 1024) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.audio = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                   nn.Linear(32, dim))
        self.depth = nn.Sequential(nn.Conv2d(1, 8, 16, stride=16), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                   nn.Linear(32, dim))

    def forward(self, inputs: dict) -> dict:
        out = {}
        if "audio" in inputs:
            out["audio"] = self.audio(inputs["audio"].squeeze(2))
        if "depth" in inputs:
            out["depth"] = self.depth(inputs["depth"])
        return out


def test_imagebind_plumbing_with_random_weights(tmp_path):
    from eventclip.io import write_events

    geometry = (32, 24)
    files = []
    for i in range(3):
        files.append(tmp_path / f"r{i}.raw")
        from eventclip.events import Geometry

        write_events(files[-1], events_for(i, 300, *geometry), Geometry(*geometry))
    event_model = EventClip.from_clip({**TINY_CONFIG, "embed_dim": 1024}, seed=0).eval()
    ev = embed_event_files(files, event_model, event_model.representation, event_slice=EventSlice())
    assert ev.shape == (3, 1024)
    bind = ImageBindEncoder(RandomImageBind())
    audio = bind.embed("audio", torch.randn(2, *IMAGEBIND_INPUTS["audio"]))
    depth = bind.embed("depth", torch.randn(2, *IMAGEBIND_INPUTS["depth"]))
    assert audio.shape == depth.shape == (2, 1024)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, rtol=1e-5)
    # event -> audio and audio -> event through one index each
    audio_index = EmbeddingIndex(audio, ["clap.wav", "dog.wav"], "audio")
    assert audio_index.search(ev, k=2).indices.shape == (3, 2)
    event_index = EmbeddingIndex(ev, [f.name for f in files], "event")
    assert event_index.search(depth, k=3).ids[0][0] in {f.name for f in files}
    with pytest.raises(ConfigError, match="128, 204"):
        bind.embed("audio", torch.randn(2, 3, 1, 64, 204))
    with pytest.raises(ConfigError, match="expected"):
        ImageBindEncoder(RandomImageBind(dim=512)).embed("depth", torch.randn(1, *IMAGEBIND_INPUTS["depth"]))
    small = EmbeddingIndex(np.random.default_rng(0).normal(size=(3, 32)), ["a", "b", "c"], "event")
    with pytest.raises(ConfigError, match="same joint space"):
        small.search(audio)
    # external .npy embeddings with ids
    np.save(tmp_path / "audio.npy", audio)
    (tmp_path / "audio.txt").write_text("clap.wav\ndog.wav\n")
    arr, ids = load_external(tmp_path / "audio.npy", tmp_path / "audio.txt")
    assert ids == ["clap.wav", "dog.wav"] and arr.shape == (2, 1024)
    bad = audio.copy()
    bad[1, 5] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ConfigError, match="row 1"):
        load_external(tmp_path / "bad.npy")
    (tmp_path / "one.txt").write_text("only\n")
    with pytest.raises(ConfigError, match="one id per line"):
        load_external(tmp_path / "audio.npy", tmp_path / "one.txt")


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    root = tmp_path_factory.mktemp("pkgs")
    model = EventClip.from_clip(TINY_CONFIG, seed=0)
    return model.save_pretrained(root / "plain"), model.save_pretrained(root / "with_fi", include_image_encoder=True)


def test_retrieve_cli_build_search_eval(tmp_path, packages, capsys):
    plain, with_fi = packages
    data = tmp_path / "data"
    write_folder_dataset(data, n_classes=3, per_class=3)
    index = tmp_path / "events.npz"
    assert main(["retrieve", "build", str(data / "events"), "--modality", "event", "--model", str(plain),
                 "--out", str(index)]) == 0
    assert EmbeddingIndex.load(index).ids[0].endswith("shape_0/000.raw")
    capsys.readouterr()
    assert main(["retrieve", "search", "--index", str(index), "--model", str(plain), "--text", "shape number 1",
                 "--k", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["query"] == "shape number 1" and len(row["results"]) == 3
    scores = [r["score"] for r in row["results"]]
    assert scores == sorted(scores, reverse=True)

    np.save(tmp_path / "depth.npy", np.random.default_rng(0).normal(size=(4, 32)).astype(np.float32))
    assert main(["retrieve", "build", "--modality", "depth", "--embeddings", str(tmp_path / "depth.npy"),
                 "--out", str(tmp_path / "depth_index.npz")]) == 0
    capsys.readouterr()
    assert main(["retrieve", "search", "--index", str(tmp_path / "depth_index.npz"), "--model", str(plain),
                 "--events", str(data / "events" / "shape_2" / "000.raw"), "--k", "2"]) == 0
    assert "depth:" in capsys.readouterr().out
    assert main(["retrieve", "build", "x", "--modality", "audio", "--model", str(plain),
                 "--out", str(tmp_path / "a.npz")]) == 2
    assert "--embeddings" in capsys.readouterr().err

    out = tmp_path / "plain_eval"
    assert main(["retrieve", "eval", "--root", str(data), "--model", str(plain), "--out", str(out)]) == 0
    table = json.loads((out / "retrieval.json").read_text())["recall"]
    assert table["event-text"]["queries"] == 9 and set(table["skipped"]) == {"event-image", "image-event"}
    out = tmp_path / "fi_eval"
    assert main(["retrieve", "eval", "--root", str(data), "--model", str(with_fi), "--out", str(out)]) == 0
    table = json.loads((out / "retrieval.json").read_text())["recall"]
    assert table["event-image"]["gallery"] == 9 and not table["skipped"]
    assert "| image-event |" in (out / "retrieval.md").read_text()
