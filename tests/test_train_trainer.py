"""The trainer end to end on a tiny synthetic benchmark with a tiny real CLIP: package, metrics, resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from eventclip.datasets.base import split_classes
from eventclip.datasets.folder import load_folder
from eventclip.errors import ConfigError
from eventclip.train import loops, synth, trainer
from eventclip.train import recipe as train_recipe

TINY_MODEL = {
    "embed_dim": 32,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_recipe(folder, **over) -> train_recipe.Recipe:
    data = {
        "name": "tiny", "seed": 0, "data": {"folder": str(folder)},
        "split": {"unseen_fraction": 0.34, "val_per_class": 1, "seed": 0},
        "model": TINY_MODEL,
        "representation": {"variant": "paper", "window_us": 100_000, "input_size": 32},
        "stage1": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "warmup_epochs": 0.5},
        "stage2": {"epochs": 1, "batch_size": 4, "lr": 1e-3},
        "losses": {"ct": True, "zs": True, "kl": True, "alpha": 0.1},
        "augment": {"max_shift_px": 4},
    }
    data.update(over)
    return train_recipe.Recipe.model_validate(data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = synth.SynthConfig(seed=1, emoji=1, letters=1, digits=1, samples_per_class=3)
    return synth.generate(tmp_path_factory.mktemp("bench") / "d", cfg)


def _rows(path):
    return list(csv.DictReader(open(path)))


def test_train_writes_a_loadable_package_with_metrics(dataset, tmp_path):
    from eventclip.model.clip import EventClip

    package = trainer.train(tiny_recipe(dataset), tmp_path / "run").package
    model = EventClip.from_pretrained(package)
    card = model.card
    assert set(card.accuracy) == {"zero_shot_unseen_top1", "seen_val_top1", "untrained_zero_shot_unseen_top1",
                                  "untrained_seen_val_top1"}
    assert card.training["unseen_classes"] and set(card.training["unseen_classes"]).isdisjoint(
        card.training["seen_classes"])
    assert card.representation["window_us"] == 100_000
    s2 = _rows(tmp_path / "run" / "metrics_stage2.csv")
    assert len(s2) == 1 and {"ct", "zs", "kl", "zero_shot_unseen_top1"} <= set(s2[0])
    assert all(np.isfinite(float(s2[0][k])) for k in ("loss", "ct", "zs", "kl"))
    # f_E was initialised from f_I and then trained: it must differ from the saved f_I copy in stage 1.
    s1 = torch.load(tmp_path / "run" / "stage1.pt", weights_only=True)["model"]
    fi = {k[len("image_encoder."):]: v for k, v in s1.items() if k.startswith("image_encoder.")}
    fe = model.event_encoder.state_dict()
    assert any(not torch.equal(fe[k], fi[k]) for k in fe)
    x = torch.randn(2, 3, 32, 32)
    assert model.encode_frames(x).shape == (2, 32)


def test_card_records_the_held_out_recordings_and_eval_holds_out_exactly_those(dataset, tmp_path):
    """The leak this guards against: eval drawing its own split, so its 'test' recordings of seen
    classes included ones f_E was trained on."""
    from eventclip.datasets import load_dataset
    from eventclip.datasets.base import split_items
    from eventclip.model.card import ModelCard

    recipe = tiny_recipe(dataset)
    package = trainer.train(recipe, tmp_path / "run").package
    split = ModelCard.read(package).training["split"]
    assert (split["seed"], split["val_per_class"], split["dataset"]) == (0, 1, str(dataset))
    ds = load_folder(dataset)
    seen, unseen = split_classes(len(ds.classes), recipe.split.unseen_fraction, recipe.split.seed)
    trained_on, _ = split_items(ds.subset(set(seen)), 1, 0)
    trained_files = {str(it.events.relative_to(dataset)) for it in trained_on}
    assert len(split["held_out_files"]) == len(ds.classes)  # one per class, seen and unseen
    assert trained_files.isdisjoint(split["held_out_files"])
    ev = load_dataset("folder", dataset, held_out_files=split["held_out_files"])
    assert sorted(str(s.path.relative_to(dataset)) for s in ev.test) == split["held_out_files"]
    assert trained_files <= {str(s.path.relative_to(dataset)) for s in ev.train}
    assert "none of them trained on" in ev.notes["split"]


def test_metrics_are_mirrored_to_tensorboard_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = loops.MetricsLog(tmp_path)
    log.write({"stage": "stage2", "epoch": 1, "loss": 0.5, "zero_shot_unseen_top1": 0.25})
    log.write({"stage": "stage2", "epoch": 2, "loss": 0.25, "zero_shot_unseen_top1": 0.5})
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("stage2/loss")] == [(1, 0.5), (2, 0.25)]
    assert [e.value for e in acc.Scalars("stage2/zero_shot_unseen_top1")] == [0.25, 0.5]
    assert len(_rows(tmp_path / "metrics_stage2.csv")) == 2


def test_resume_continues_after_the_last_epoch(dataset, tmp_path):
    out = tmp_path / "run"
    trainer.train(tiny_recipe(dataset, stage1=None), out)
    first = torch.load(out / "stage2.pt", weights_only=True)
    assert first["epoch"] == 0
    longer = tiny_recipe(dataset, stage1=None, stage2={"epochs": 2, "batch_size": 4, "lr": 1e-3})
    trainer.train(longer, out, resume=True)
    rows = _rows(out / "metrics_stage2.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert torch.load(out / "stage2.pt", weights_only=True)["epoch"] == 1


def test_lr_schedule_warms_up_then_decays():
    st = train_recipe.StageConfig(epochs=10, batch_size=2, lr=1.0, min_lr=0.1, warmup_epochs=2)
    assert train_recipe.lr_at(0, st) == pytest.approx(0.1)
    assert train_recipe.lr_at(1, st) == pytest.approx(0.55)
    assert train_recipe.lr_at(2, st) == pytest.approx(1.0)
    assert train_recipe.lr_at(6, st) == pytest.approx(0.55)
    assert train_recipe.lr_at(10, st) == pytest.approx(0.1)


def test_recipes_load_and_errors_name_the_field(tmp_path):
    r = train_recipe.load_recipe("default", {"stage2.epochs": 3})
    assert r.stage2.epochs == 3 and r.loss_config().name == "ct+zs+kl+pred"
    with pytest.raises(ConfigError, match="not found"):
        train_recipe.load_recipe("nope")
    with pytest.raises(ConfigError, match="'losses'.*bogus"):
        train_recipe.load_recipe("default", {"losses.bogus": 1}).loss_config()
    with pytest.raises(ConfigError, match="'augment'"):
        train_recipe.load_recipe("default", {"augment.flip": 1}).augment_config()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {}\nmodel: {}\nrepresentation: {}\nstage2: {epochs: 0, batch_size: 4, lr: 1}\n")
    with pytest.raises(ConfigError, match="stage2.epochs"):
        train_recipe.load_recipe(bad)


def test_folder_dataset_errors_and_split(dataset, tmp_path):
    ds = load_folder(dataset)
    assert len(ds.classes) == 3 and len(ds.items) == 9
    seen, unseen = split_classes(10, 0.3, 0)
    assert (len(unseen) == 3 and set(seen) | set(unseen) == set(range(10))
            and split_classes(10, 0.3, 0) == (seen, unseen))
    (tmp_path / "classes.json").write_text('[{"name": "a"}]')
    (tmp_path / "index.csv").write_text("events,image,label\nx.raw,x.png,b\n")
    with pytest.raises(ConfigError, match="line 2: label 'b'"):
        load_folder(tmp_path)
    with pytest.raises(ConfigError, match="classes.json"):
        load_folder(tmp_path / "empty")


def test_seeds_and_the_labelled_sample_are_scored_and_recorded(dataset, tmp_path):
    """--seeds trains once per seed and writes mean ± std of every figure into each card, including the
    demo sample's top-1 before (f_E = f_I) and after training, scored window by window as the daemon does."""
    from eventclip.model.card import ModelCard

    ds = load_folder(dataset)
    sample = synth.make_sample(tmp_path / "sample", ds.classes, synth.SynthConfig(seed=1, emoji=1, letters=1, digits=1,
                                                                                   samples_per_class=3), seed=5)
    recipe = tiny_recipe(dataset, sample=str(sample))
    report = trainer.train_seeds(recipe, tmp_path / "runs", [0, 1])
    over = report["over_seeds"]
    for key in ("sample_top1", "untrained_sample_top1", "zero_shot_unseen_top1", "untrained_seen_val_top1"):
        assert len(over[key]["values"]) == 2 and 0.0 <= over[key]["mean"] <= 1.0, key
        assert over[key]["std"] == pytest.approx(float(np.std(over[key]["values"])), abs=1e-4)
    for seed in (0, 1):
        card = ModelCard.read(tmp_path / "runs" / f"seed_{seed}" / "model")
        assert card.accuracy["over_seeds"]["seeds"] == [0, 1] and "sample_top3" in card.accuracy
    assert (tmp_path / "runs" / "seeds.json").is_file()
