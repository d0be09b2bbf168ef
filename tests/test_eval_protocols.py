"""Metrics, the three protocols, and ``eventclip eval`` end to end with a real (tiny, random) CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eventclip.cli import main
from eventclip.datasets.base import EvalDataset, Sample
from eventclip.errors import ConfigError
from eventclip.eval.metrics import (
    classification_metrics,
    confusion_matrix,
    mean_std,
    per_class_accuracy,
    top_k_accuracy,
)
from eventclip.eval.protocols import Embedded, few_shot, linear_probe, zero_shot
from eventclip.model.configs import TINY_CONFIG
from tests.test_datasets_eval import events_for, write_nmnist_bin


def test_top_k_confusion_and_per_class():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    labels = np.array([0, 1, 1, 2])
    assert top_k_accuracy(scores, labels, 1) == 0.5  # row 2 ties 0/1 -> class 0 (stable), row 1 -> 2
    assert top_k_accuracy(scores, labels, 2) == 1.0
    assert top_k_accuracy(scores, labels, 10) == 1.0
    cm = confusion_matrix(labels, np.array([0, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    acc = per_class_accuracy(np.array([[1, 0], [0, 0]]))
    assert acc[0] == 1.0 and np.isnan(acc[1])
    m = classification_metrics(scores, labels, ["a", "b", "c"])
    assert m["n_samples"] == 4 and m["top1"] == 0.5 and m["per_class"]["b"] == {"accuracy": 0.0, "n": 2}
    assert m["mean_per_class"] == pytest.approx((1 + 0 + 1) / 3)
    assert mean_std([0.5, 1.0]) == {"mean": 0.75, "std": 0.25, "values": [0.5, 1.0]}
    with pytest.raises(ValueError):
        top_k_accuracy(scores, np.array([0, 1, 5, 2]), 1)


def clustered(n_per_class: int, n_classes: int, dim: int, seed: int, noise: float = 0.05):
    """Embeddings around one random unit centre per class, so nearest-centre classification is exact."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + noise * rng.normal(size=(len(labels), dim)), labels, centres


def fake_ds(n_classes: int, n_train: int, n_test: int, candidates=None) -> EvalDataset:
    names = [f"c{i}" for i in range(n_classes)]
    mk = lambda n: [Sample(Path("x"), c) for c in range(n_classes) for _ in range(n)]  # noqa: E731
    return EvalDataset("fake", Path("."), names, names, mk(n_train), mk(n_test), candidates=candidates)


def test_protocols_on_separable_embeddings():
    x_tr, y_tr, centres = clustered(6, 4, 16, seed=0)
    x_te, y_te, _ = clustered(3, 4, 16, seed=0)
    x_te = centres[y_te] + 0.05 * np.random.default_rng(9).normal(size=x_te.shape)
    train, test = Embedded(x_tr, y_tr), Embedded(x_te, y_te)
    ds = fake_ds(4, 6, 3)
    # Text embeddings unrelated to the clusters: zero-shot near chance, few-shot recovers the classes.
    text = np.random.default_rng(5).normal(size=(4, 16))
    fs = few_shot(train, test, text, ds, 100.0, shots=[1, 5, 10], seeds=3, method="tip")
    assert fs["shots"]["5"]["top1"]["mean"] == 1.0 and len(fs["shots"]["5"]["top1"]["values"]) == 3
    assert fs["skipped"] == {"10": "class 'c0' has 6 train samples, fewer than k=10"}
    assert fs["metrics"]["k"] == 5 and np.trace(np.array(fs["metrics"]["confusion"])) == 12
    probe = few_shot(train, test, text, ds, 100.0, shots=[2], seeds=2, method="probe")
    assert probe["shots"]["2"]["top1"]["mean"] == 1.0
    lp = linear_probe(train, test, text, ds, 100.0)
    assert lp["top1"] == 1.0 and lp["n_train"] == 24
    # Text embeddings equal to the centres: zero-shot is exact; candidates restrict the choice.
    zs = zero_shot(test, centres, ds, 100.0)
    assert zs["top1"] == 1.0 and zs["n_samples"] == 12
    zs2 = zero_shot(test, centres, fake_ds(4, 6, 3, candidates=[1, 3]), 100.0)
    assert zs2["classes"] == ["c1", "c3"] and zs2["n_samples"] == 6 and zs2["top1"] == 1.0
    with pytest.raises(ConfigError, match="no --shots"):
        few_shot(train, test, text, ds, 100.0, shots=[7], seeds=1)


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory):
    from eventclip.model.clip import EventClip

    folder = tmp_path_factory.mktemp("pkg") / "tiny"
    EventClip.from_clip(TINY_CONFIG, seed=0).save_pretrained(folder)
    return folder


def test_eval_cli_zero_shot_few_shot_linear_probe_on_fake_nmnist(tmp_path, tiny_package, capsys):
    root = tmp_path / "nmnist"
    for split, n in (("Train", 3), ("Test", 2)):
        for d in range(10):
            for i in range(n):
                write_nmnist_bin(root / split / str(d) / f"{i:05d}.bin", events_for(7 * d + i, 60, 34, 34))
    out = tmp_path / "zs"
    assert main(["eval", "zero-shot", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    card = json.loads((tiny_package / "model.json").read_text())
    assert report["model"]["hash"] == card["model_hash"] and report["command"].startswith("eventclip eval zero-shot")
    res = report["result"]
    assert res["n_samples"] == 20 and len(res["per_class"]) == 10 and 0 <= res["top1"] <= res["top5"] <= 1
    assert sum(v["n"] for v in res["per_class"].values()) == 20 and np.sum(res["confusion"]) == 20
    assert Image.open(out / "confusion.png").size[0] > 100
    assert "top-1" in capsys.readouterr().out

    out = tmp_path / "fs"
    assert main(["eval", "few-shot", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--shots", "1,2,5", "--seeds", "2", "--out", str(out)]) == 0
    res = json.loads((out / "report.json").read_text())["result"]
    assert set(res["shots"]) == {"1", "2"} and "5" in res["skipped"]
    assert len(res["shots"]["2"]["top1"]["values"]) == 2 and res["shots"]["2"]["n_samples"] == 20
    assert (out / "confusion.png").is_file()

    out = tmp_path / "zs_prompts"
    assert main(["eval", "zero-shot", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--prompts", str(Path(__file__).parents[1] / "zero_shot_prompts" / "nmnist.yaml"),
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["prompts_file"].endswith("nmnist.yaml") and "--prompts" in report["command"]
    assert report["templates"][0] == "a photo of the digit {}."
    (tmp_path / "few.yaml").write_text("classes: ['0', '1']\n")
    assert main(["eval", "zero-shot", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--prompts", str(tmp_path / "few.yaml"), "--out", str(out)]) == 2
    assert "'2'" in capsys.readouterr().err

    out = tmp_path / "lp"
    assert main(["eval", "linear-probe", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--out", str(out)]) == 0
    res = json.loads((out / "report.json").read_text())["result"]
    assert res["n_train"] == 30 and res["n_samples"] == 20

    assert main(["eval", "zero-shot", "--dataset", "nmnist", "--root", str(tmp_path / "none"),
                 "--model", str(tiny_package), "--out", str(tmp_path / "x")]) == 2
    assert "Train" in capsys.readouterr().err
    assert main(["eval", "zero-shot", "--dataset", "nmnist", "--root", str(root), "--model", str(tiny_package),
                 "--subset", "unseen", "--out", str(tmp_path / "x")]) == 2
    assert "unseen_classes" in capsys.readouterr().err


def test_eval_cli_nimagenet_paper_protocol(tmp_path, tiny_package):
    from tests.test_datasets_eval import write_nimagenet_npz

    root = tmp_path / "nin"
    for i in range(100):
        w = f"n{i:08d}"
        write_nimagenet_npz(root / "extracted_train" / w / "a.npz", events_for(i, 40, 640, 480))
        write_nimagenet_npz(root / "extracted_val" / w / "b.npz", events_for(500 + i, 40, 640, 480))
    out = tmp_path / "paper"
    assert main(["eval", "zero-shot", "--dataset", "nimagenet", "--root", str(root), "--model", str(tiny_package),
                 "--protocol", "paper", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["result"]["n_samples"] == 20 and len(report["result"]["classes"]) == 20
    assert report["result"]["classes"] == report["notes"]["protocol"]["held_out_classes"]
    assert report["event_slice"]["n_events"] == 30_000 and "--protocol paper" in report["command"]
