"""Train an EventClip from a recipe: stage 1 a small CLIP (f_I, f_T), stage 2 the event encoder f_E.

Why two stages: no pretrained CLIP can be downloaded here, so the default model learns its own small
CLIP on the benchmark's images and class texts (every class), then f_E starts as a copy of f_I and
learns, from the events of *seen* classes only, to land where f_I puts the paired images (the
paper's L_ct + α·L_zs + L_kl). Classes held out of stage 2 measure zero-shot transfer. A recipe
can skip stage 1 (``stage1: null``) when f_I/f_T come from a real CLIP checkpoint.

Features: AdamW with linear warm-up then cosine decay (per step, the authors' schedule), AMP
(bfloat16) on CUDA, a checkpoint per epoch with ``resume``, tqdm bars, ``metrics.csv`` (and
TensorBoard when installed), per-epoch zero-shot top-1 on unseen classes, DDP under ``torchrun``
(gloo on CPU, nccl on GPU). The output is a model package (``<out>/model``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from eventclip.datasets.base import PROMPT_TEMPLATES, Item, PairedDataset, split_classes, split_items
from eventclip.datasets.batching import Batcher
from eventclip.datasets.cache import EventCache
from eventclip.errors import ConfigError
from eventclip.train.distributed import init_distributed, rank, world
from eventclip.train.loops import MetricsLog, Run, Split, train_stage1, train_stage2
from eventclip.train.recipe import Recipe, SplitConfig

log = logging.getLogger(__name__)


def prepare_data(recipe: Recipe, out: Path) -> PairedDataset:
    """The recipe's dataset: synthesised into ``<out>/data`` (once; reused on resume) or an existing folder."""
    from eventclip.datasets.folder import load_folder
    from eventclip.datasets.ncaltech101 import load_ncaltech101_pairs
    from eventclip.datasets.nimagenet import load_nimagenet_pairs

    if "folder" in recipe.data:
        return load_folder(recipe.data["folder"])
    if "ncaltech101" in recipe.data:
        return load_ncaltech101_pairs(**recipe.data["ncaltech101"])
    if "nimagenet" in recipe.data:
        return load_nimagenet_pairs(**recipe.data["nimagenet"])
    if "synth" not in recipe.data:
        raise ConfigError("recipe.data must hold one of 'synth' (generator settings), 'folder' (a dataset path), "
                          "'ncaltech101' or 'nimagenet' ({events_root, images_root[, synset_mapping]})")
    from eventclip.train.synth import SynthConfig, generate

    folder = out / "data"
    if not (folder / "index.csv").is_file():
        if rank() == 0:
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            generate(folder, SynthConfig(**recipe.data["synth"]), progress=True)
        if world() > 1:
            dist.barrier()
    return load_folder(folder)


def _sample_figures(recipe: Recipe, ds: PairedDataset, model: Any, keep: Path | None, prefix: str,
                    resume: bool) -> dict[str, float]:
    """Top-1/top-3 of ``model`` on the recipe's labelled sample (``prefix``_top1, ...), or {} without one.

    ``keep`` stores the figures so a resumed run reports the baseline measured before its first stage-2 epoch.
    """
    if recipe.sample is None or rank() != 0:
        return {}
    if resume and keep is not None and keep.is_file():
        return json.loads(keep.read_text())
    from eventclip.train.sample_eval import sample_accuracy

    if recipe.sample == "bundled":
        from eventclip.data import sample_recording_path

        path = sample_recording_path()
    else:
        path = Path(recipe.sample)
    figures = sample_accuracy(model, path, ds.texts, list(PROMPT_TEMPLATES))
    out = {f"{prefix}_top1": figures["top1"], f"{prefix}_top3": figures["top3"]}
    log.info("sample %s: %s (%d windows)", path.name, out, figures["windows"])
    if keep is not None:
        keep.write_text(json.dumps(out) + "\n")
    return out


def train_seeds(recipe: Recipe, out: str | Path, seeds: list[int]) -> dict[str, Any]:
    """The recipe once per seed (``<out>/seed_<s>``, one shared dataset), and every figure's mean ± std.

    Each package's card gets ``accuracy.over_seeds`` ({metric: {mean, std, values}}, std over seeds,
    population), so whichever package ships says how much its figures vary with the seed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = prepare_data(recipe, out)
    runs = {s: train(recipe.model_copy(update={"seed": s}), out / f"seed_{s}", dataset=ds) for s in seeds}
    metrics = sorted({k for r in runs.values() for k in r.metrics})
    summary = {}
    for k in metrics:
        values = [float(runs[s].metrics[k]) for s in seeds if k in runs[s].metrics]
        summary[k] = {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4),
                      "values": [round(v, 4) for v in values]}
    report = {"seeds": list(seeds), "over_seeds": summary, "packages": {s: str(r.package) for s, r in runs.items()}}
    if rank() == 0:
        from eventclip.model.card import ModelCard

        for r in runs.values():
            card = ModelCard.read(r.package)
            accuracy = dict(card.accuracy, over_seeds={"seeds": list(seeds), **summary})
            card.model_copy(update={"accuracy": accuracy}).write(r.package)
        (out / "seeds.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def dataset_credits(ds: PairedDataset) -> list[str]:
    """The credits a dataset folder's ``meta.json`` lists (the synthetic benchmark's picture sources), so the
    model card carries the attribution its training pictures require."""
    meta = ds.root / "meta.json"
    if not meta.is_file():
        return []
    return [str(c) for c in json.loads(meta.read_text()).get("credits", [])]


def held_out_record(ds: PairedDataset, split: SplitConfig, held_out: list[Item]) -> dict[str, Any]:
    """What the model card keeps of the split, so evaluation can hold out exactly these recordings:
    the split settings and the held-out event files (relative to the dataset folder, sorted)."""
    files = sorted(str(it.events.relative_to(ds.root)) for it in held_out)
    return {"seed": split.seed, "unseen_fraction": split.unseen_fraction, "val_per_class": split.val_per_class,
            "dataset": str(ds.root), "held_out_files": files}


@dataclass
class TrainResult:
    """What :func:`train` produced: the package folder (written by rank 0), the trained model, final metrics."""

    package: Path
    model: Any
    metrics: dict[str, float]


def train(recipe: Recipe, out: str | Path, *, resume: bool = False,
          dataset: PairedDataset | None = None) -> TrainResult:
    """Run the recipe end to end and write the model package to ``<out>/model``."""
    from eventclip.model.clip import EventClip

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = init_distributed()
    started = time.time()
    torch.manual_seed(recipe.seed)
    ds = dataset if dataset is not None else prepare_data(recipe, out)
    rep = recipe.representation_model()
    seen, unseen = split_classes(len(ds.classes), recipe.split.unseen_fraction, recipe.split.seed)
    seen_train, seen_val = split_items(ds.subset(set(seen)), recipe.split.val_per_class, recipe.split.seed)
    unseen_items = ds.subset(set(unseen))
    # f_E never sees unseen classes; their held-out recordings are those a few-shot head must not fit on.
    unseen_val = split_items(unseen_items, recipe.split.val_per_class, recipe.split.seed)[1]
    cache = EventCache(ds.geometry)
    batcher = Batcher(cache, rep, recipe.augment_config())
    eval_batcher = Batcher(cache, rep, None)
    model = EventClip.from_clip(recipe.model, representation=rep.model_dump(mode="json"),
                                source=f"trained from scratch by eventclip train (recipe {recipe.name})",
                                seed=recipe.seed).to(device)
    rng = np.random.default_rng(recipe.seed + 1000 * rank())
    metrics = MetricsLog(out)
    run = Run(model, ds, out, metrics, rng, device, resume)
    if recipe.stage1 is not None:
        # Stage 1 sees every class's images and texts (never their events).
        train_stage1(run, seen_train + seen_val + unseen_items, Batcher(cache, rep, recipe.augment_config(1)),
                     recipe.stage1)
    sample_before = _sample_figures(recipe, ds, model, out / "sample_untrained.json", "untrained_sample", resume)
    result = train_stage2(run, Split(seen_train, seen_val, unseen_items, seen, unseen), batcher, eval_batcher,
                          recipe.stage2, recipe.loss_config())
    result |= sample_before | _sample_figures(recipe, ds, model, None, "sample", False)
    package = out / "model"
    if rank() == 0:
        model.card = model.card.model_copy(update={
            "name": f"eventclip-{recipe.name}",
            "training": {
                "recipe": recipe.model_dump(mode="json"),
                "command": f"eventclip train --recipe {recipe.name} --out {out}",
                "classes": ds.classes, "texts": ds.texts,
                "seen_classes": [ds.classes[i] for i in seen], "unseen_classes": [ds.classes[i] for i in unseen],
                "split": held_out_record(ds, recipe.split, seen_val + unseen_val),
                "credits": dataset_credits(ds),
                "what_it_knows": recipe.description,
                "prompt_templates": list(PROMPT_TEMPLATES),
                "wall_time_s": round(time.time() - started, 1),
                "world_size": world(), "device": str(device),
            },
            "accuracy": {k: round(v, 4) for k, v in result.items()},
        })
        model.cpu().save_pretrained(package)
        (out / "result.json").write_text(json.dumps({"result": result, "package": str(package)}, indent=1) + "\n")
    if world() > 1:
        dist.barrier()
    return TrainResult(package, model, result)
