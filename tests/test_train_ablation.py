"""The ablation protocol on a tiny benchmark: every loss combination and seed yields bounded accuracies."""

from __future__ import annotations

import json

import numpy as np

from eventclip.train import ablation, synth
from tests.test_train_trainer import tiny_recipe


def test_video_events_come_from_image_edges_only():
    img = np.full((32, 32, 3), 200, np.uint8)
    img[12:20, 12:20] = 20  # a dark square on a light background
    ev = ablation.video_events(img, np.random.default_rng(0))
    assert len(ev) > 0 and np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].min() >= 8 and ev["x"].max() <= 23  # near the square's edges, not in the flat background
    flat = ablation.video_events(np.full((32, 32, 3), 90, np.uint8), np.random.default_rng(0))
    assert len(flat) == 0


def test_ablation_runs_each_combination_and_seed(tmp_path):
    folder = synth.generate(tmp_path / "d", synth.SynthConfig(seed=5, emoji=2, letters=2, digits=2,
                                                              samples_per_class=3))
    recipe = tiny_recipe(folder, split={"unseen_fraction": 0.5, "val_per_class": 1, "seed": 0})
    res = ablation.run_ablation(recipe, tmp_path / "abl", seeds=[0, 1], configs=["ct", "ct+zs+kl"])
    assert [(r["losses"], r["seed"]) for r in res["runs"]] == [("ct", 0), ("ct", 1), ("ct+zs+kl", 0), ("ct+zs+kl", 1)]
    for row in res["runs"] + [res["f_I_init"]]:
        for key in ("zero_shot", "video_zero_shot", "tip_1shot", "probe_2shot"):
            assert 0.0 <= row[key] <= 1.0
    assert "tip_5shot" not in res["runs"][0]  # 3 recordings per class leave no query at k = 5
    table = res["table"].splitlines()
    assert len(table) == 2 + 1 + 2 and "±" in table[-1]
    assert json.loads((tmp_path / "abl" / "ablation.json").read_text())["table"] == res["table"]
