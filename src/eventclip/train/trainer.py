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

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventclip.datasets.augment import AugmentConfig
from eventclip.datasets.base import PROMPT_TEMPLATES, Item, PairedDataset, split_classes, split_items
from eventclip.datasets.batching import Batcher
from eventclip.datasets.cache import EventCache
from eventclip.errors import ConfigError
from eventclip.frames.preprocess import Representation
from eventclip.model.card import representation_from
from eventclip.train.losses import LossConfig, total_loss

log = logging.getLogger(__name__)
RECIPES = Path(__file__).with_name("recipes")


class StageConfig(BaseModel):
    """One optimisation stage: epochs, batch size (per process), AdamW and the warm-up/cosine schedule."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=1)
    lr: float = Field(gt=0)
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_epochs: float = Field(0.0, ge=0)


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unseen_fraction: float = 0.25
    val_per_class: int = Field(1, ge=0)
    seed: int = 0


class Recipe(BaseModel):
    """A training recipe, as data (YAML). See ``recipes/default.yaml`` for every field."""

    model_config = ConfigDict(extra="forbid")
    name: str = "custom"
    seed: int = 0
    data: dict[str, Any] = Field(description="{'synth': {...SynthConfig fields}} or {'folder': path}")
    split: SplitConfig = SplitConfig()
    model: dict[str, Any]
    representation: dict[str, Any]
    stage1: StageConfig | None = None
    stage2: StageConfig
    losses: dict[str, Any] = Field(default_factory=dict)
    augment: dict[str, Any] = Field(default_factory=dict)
    stage1_augment: dict[str, Any] | None = Field(None, description="image augmentation of stage 1 (AugmentConfig)")
    description: str = Field("", description="what the trained model knows, for its card (training.what_it_knows)")
    sample: str | None = Field(None, description="a labelled sample recording (with its .json) to score before and "
                               "after stage 2, or 'bundled' for eventclip's own sample (the demo's figure)")

    def loss_config(self) -> LossConfig:
        """The ``losses`` section as a LossConfig; a wrong key or value is a ConfigError naming it."""
        try:
            return LossConfig(**self.losses)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"recipe field 'losses': {exc} (keys: ct, zs, kl, pred, alpha, t_event, t_image, "
                              f"t_zscl)") from exc

    def representation_model(self) -> Representation:
        """The ``representation`` section, read as a model card's is; a bad field is a ConfigError naming it."""
        return representation_from(self.representation, "recipe", error=ConfigError)

    def augment_config(self, stage: int = 2) -> AugmentConfig | None:
        """Stage 2's event+view augmentation, or stage 1's image augmentation (None when not set)."""
        if stage == 1 and self.stage1_augment is None:
            return None
        field = "augment" if stage == 2 else "stage1_augment"
        a = dict(getattr(self, field))
        if "crop_scale" in a:
            a["crop_scale"] = tuple(a["crop_scale"])
        try:
            return AugmentConfig(**a)
        except TypeError as exc:
            raise ConfigError(f"recipe field {field!r}: {exc} (see eventclip.datasets.augment.AugmentConfig)") from exc


def load_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a shipped recipe by name (``default``) or a YAML file; ``overrides`` use dotted keys (``stage2.epochs``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES.glob("*.yaml"))
        raise ConfigError(f"recipe {name_or_path!r} not found (shipped recipes: {shipped}; or pass a YAML path)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid recipe: {fields}") from exc
    try:
        recipe.loss_config()
        recipe.augment_config(1)
        recipe.augment_config(2)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return recipe


def lr_at(epoch_float: float, stage: StageConfig) -> float:
    """Linear warm-up to ``lr`` then half-cosine to ``min_lr``, as a function of fractional epoch."""
    if epoch_float < stage.warmup_epochs:
        return stage.min_lr + (stage.lr - stage.min_lr) * epoch_float / stage.warmup_epochs
    span = max(stage.epochs - stage.warmup_epochs, 1e-9)
    progress = min((epoch_float - stage.warmup_epochs) / span, 1.0)
    return stage.min_lr + (stage.lr - stage.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- distributed helpers -------------------------------------------------------------------------

def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def init_distributed() -> torch.device:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); return this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce-mean the gradients (what DDP does), for modules we cannot wrap (frozen siblings)."""
    if _world() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= _world()


# -- batches -------------------------------------------------------------------------------------

_TOKEN_CACHE: dict[tuple[str, ...], torch.Tensor] = {}


def _template_tokens(model, texts: list[str]) -> torch.Tensor:
    """Token ids (C, T, context) of every class under every template; tokenised once per class list."""
    key = (str(model.tokenizer_path), model.card.context_length, *texts)
    if key not in _TOKEN_CACHE:
        prompts = [t.format(c) for c in texts for t in PROMPT_TEMPLATES]
        _TOKEN_CACHE[key] = model.tokenize(prompts).view(len(texts), len(PROMPT_TEMPLATES), -1)
    return _TOKEN_CACHE[key]


def class_text_embeddings(model, texts: list[str], grad: bool = False,
                          rng: np.random.Generator | None = None) -> torch.Tensor:
    """One unit embedding per class: the mean over PROMPT_TEMPLATES of f_T(template.format(text)).

    With ``rng`` (training), each class uses one template drawn at random instead of the mean:
    half the text-tower cost per step, and the tower learns every template.
    """
    tokens = _template_tokens(model, texts)
    if rng is not None:
        picks = torch.from_numpy(rng.integers(0, len(PROMPT_TEMPLATES), len(texts)))
        tokens = tokens[torch.arange(len(texts)), picks][:, None]
    n, per_class = tokens.shape[:2]
    with torch.set_grad_enabled(grad):
        emb = F.normalize(model.text_encoder(tokens.reshape(n * per_class, -1).to(model._device())), dim=-1)
    emb = emb.view(n, per_class, -1).mean(1)
    return F.normalize(emb, dim=-1)


@torch.no_grad()
def embed_items(model, batcher: Batcher, items: list[Item], kind: str = "frames", batch_size: int = 64) -> torch.Tensor:
    """Unit embeddings of items' event frames (f_E) or images (f_I), no augmentation."""
    was = model.event_encoder.training
    model.eval()
    out = []
    for i in range(0, len(items), batch_size):
        b = batcher(items[i:i + batch_size], None, images=kind == "images", frames=kind == "frames")
        x = b[kind].to(model._device())
        out.append(model.encode_frames(x) if kind == "frames" else model.encode_images(x))
    model.train(was)
    return torch.cat(out).float().cpu() if out else torch.zeros(0, model.embed_dim)


def top1(embeddings: torch.Tensor, labels: torch.Tensor, text: torch.Tensor, candidates: list[int]) -> float:
    """Zero-shot top-1: the nearest of the ``candidates`` class texts; labels are global class indices."""
    if len(labels) == 0:
        return float("nan")
    cand = torch.tensor(candidates)
    pred = cand[(embeddings @ text[cand].T.to(embeddings)).argmax(1)]
    return float((pred == labels).float().mean())


# -- the training loop ---------------------------------------------------------------------------

class MetricsLog:
    """Append-only CSVs of per-epoch metrics (``metrics_<stage>.csv``), mirrored to TensorBoard when it
    is installed (rank 0 only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tb = None
        if _rank() == 0:
            from eventclip._optional import available

            if available("tensorboard"):
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(folder / "tensorboard"))

    def write(self, row: dict[str, Any]) -> None:
        if _rank() != 0:
            return
        log.info("%s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        path = self.folder / f"metrics_{row['stage']}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb is not None:
            step = int(row["epoch"])
            for k, v in row.items():
                if isinstance(v, float) and k != "epoch":
                    self.tb.add_scalar(f"{row['stage']}/{k}", v, step)
            self.tb.flush()


def _progress(iterable, desc: str, total: int):
    """A bar on rank 0's terminal (eventclip.progress: none off a terminal or with EVENTCLIP_NO_PROGRESS)."""
    if _rank() != 0:
        return iterable
    from eventclip.progress import bar

    return bar(iterable, desc=desc, total=total)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _batches(items: list[Item], batch_size: int, rng: np.random.Generator) -> list[list[Item]]:
    """Shuffle, shard across processes (each rank takes every world-th item), cut into full batches."""
    order = rng.permutation(len(items))
    mine = [items[i] for i in order[_rank()::_world()]]
    n = len(mine) // batch_size
    if n == 0 and len(mine) >= 2:
        return [mine]
    return [mine[i * batch_size:(i + 1) * batch_size] for i in range(n)]


def _checkpoint(path: Path, state: dict[str, Any]) -> None:
    if _rank() == 0:
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)


def train_stage1(model, ds: PairedDataset, items: list[Item], batcher: Batcher, stage: StageConfig, out: Path,
                 metrics: MetricsLog, rng: np.random.Generator, device: torch.device, resume: bool) -> None:
    """CLIP pre-training of f_I and f_T: each image classified against every class text (cross-entropy
    over the class texts at CLIP's learnable temperature), so no in-batch duplicate is a false negative."""
    params = list(model.image_encoder.parameters()) + list(model.text_encoder.parameters()) + [model.logit_scale]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    ckpt = out / "stage1.pt"
    start = 0
    if resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        start = state["epoch"] + 1
    for epoch in range(start, stage.epochs):
        model.image_encoder.train()
        model.text_encoder.train()
        batches = _batches(items, stage.batch_size, rng)
        t0, losses, correct, seen = time.time(), [], 0, 0
        for i, names in enumerate(_progress(batches, f"stage1 {epoch + 1}/{stage.epochs}", len(batches))):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch + i / len(batches), stage)
            b = batcher(names, rng, images=True, frames=False)
            with _autocast(device):
                img = F.normalize(model.image_encoder(b["images"].to(device)), dim=-1)
                text = class_text_embeddings(model, ds.texts, grad=True, rng=rng)
                logits = model.logit_scale.clamp(max=math.log(100)).exp() * img.float() @ text.float().T
            labels = b["labels"].to(device)
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            _average_gradients(params)
            opt.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        metrics.write({"stage": "stage1", "epoch": epoch + 1, "loss": float(np.mean(losses)),
                       "train_top1": correct / max(seen, 1), "lr": opt.param_groups[0]["lr"],
                       "seconds": time.time() - t0})
        _checkpoint(ckpt, {"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                           "epoch": epoch})
    model.event_encoder.load_state_dict(model.image_encoder.state_dict())
    model.logit_scale.requires_grad_(False)
    model.freeze_clip()


def train_stage2(model, ds: PairedDataset, train_items: list[Item], val_items: list[Item], unseen_items: list[Item],
                 seen: list[int], unseen: list[int], batcher: Batcher, eval_batcher: Batcher, stage: StageConfig,
                 loss_cfg: LossConfig, out: Path, metrics: MetricsLog, rng: np.random.Generator,
                 device: torch.device, resume: bool) -> dict[str, float]:
    """Train f_E with the paper's objective on seen classes; evaluate zero-shot on unseen ones every epoch.

    Returns the last epoch's figures and, as ``untrained_*``, the same figures before training (f_E = f_I).
    """
    model.freeze_clip()
    encoder = model.event_encoder
    encoder.requires_grad_(True)
    if _world() > 1:
        from torch.nn.parallel import DistributedDataParallel

        encoder = DistributedDataParallel(encoder)
    opt = torch.optim.AdamW(model.event_encoder.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    with torch.no_grad():
        text_all = class_text_embeddings(model, ds.texts).float()
    text_seen = text_all[seen]
    scale = float(model.logit_scale.detach().exp())

    def evaluate() -> dict[str, float]:
        emb_u = embed_items(model, eval_batcher, unseen_items)
        emb_v = embed_items(model, eval_batcher, val_items)
        return {
            "zero_shot_unseen_top1": top1(emb_u, torch.tensor([it.label for it in unseen_items]), text_all, unseen),
            "seen_val_top1": top1(emb_v, torch.tensor([it.label for it in val_items]), text_all, seen),
        }

    ckpt = out / "stage2.pt"
    start, result = 0, {}
    if resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=True, map_location=device)
        model.event_encoder.load_state_dict(state["encoder"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        start = state["epoch"] + 1
        result = state.get("result", {})
        baseline = state.get("baseline", {})
    else:
        # f_E is still the copy of f_I: the untrained baseline every trained figure is quoted beside.
        baseline = {f"untrained_{k}": v for k, v in evaluate().items()}
        log.info("untrained baseline (f_E = f_I): %s", " ".join(f"{k}={v:.4g}" for k, v in baseline.items()))
    for epoch in range(start, stage.epochs):
        model.train()
        batches = _batches(train_items, stage.batch_size, rng)
        t0, sums = time.time(), {}
        for i, names in enumerate(_progress(batches, f"stage2 {epoch + 1}/{stage.epochs}", len(batches))):
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch + i / len(batches), stage)
            b = batcher(names, rng)
            with _autocast(device):
                with torch.no_grad():
                    img = model.encode_images(b["images"].to(device)).float()
                evt = F.normalize(encoder(b["frames"].to(device)), dim=-1).float()
            labels = torch.tensor([seen.index(int(v)) for v in b["labels"]], device=device)
            loss, parts = total_loss(loss_cfg, img, evt, text_seen.to(device), labels, scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in {"loss": loss.item(), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v / len(batches)
        result = evaluate()
        metrics.write({"stage": "stage2", "epoch": epoch + 1, **sums, **result, "lr": opt.param_groups[0]["lr"],
                       "seconds": time.time() - t0})
        _checkpoint(ckpt, {"encoder": model.event_encoder.state_dict(), "opt": opt.state_dict(),
                           "rng": rng.bit_generator.state, "epoch": epoch, "result": result, "baseline": baseline})
    return result | baseline


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
        if _rank() == 0:
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            generate(folder, SynthConfig(**recipe.data["synth"]), progress=True)
        if _world() > 1:
            dist.barrier()
    return load_folder(folder)


def _sample_figures(recipe: Recipe, ds: PairedDataset, model: Any, keep: Path | None, prefix: str,
                    resume: bool) -> dict[str, float]:
    """Top-1/top-3 of ``model`` on the recipe's labelled sample (``prefix``_top1, ...), or {} without one.

    ``keep`` stores the figures so a resumed run reports the baseline measured before its first stage-2 epoch.
    """
    if recipe.sample is None or _rank() != 0:
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
    if _rank() == 0:
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
    rng = np.random.default_rng(recipe.seed + 1000 * _rank())
    metrics = MetricsLog(out)
    if recipe.stage1 is not None:
        # Stage 1 sees every class's images and texts (never their events).
        train_stage1(model, ds, seen_train + seen_val + unseen_items, Batcher(cache, rep, recipe.augment_config(1)),
                     recipe.stage1, out, metrics, rng, device, resume)
    sample_before = _sample_figures(recipe, ds, model, out / "sample_untrained.json", "untrained_sample", resume)
    result = train_stage2(model, ds, seen_train, seen_val, unseen_items, seen, unseen, batcher, eval_batcher,
                          recipe.stage2, recipe.loss_config(), out, metrics, rng, device, resume)
    result |= sample_before | _sample_figures(recipe, ds, model, None, "sample", False)
    package = out / "model"
    if _rank() == 0:
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
                "world_size": _world(), "device": str(device),
            },
            "accuracy": {k: round(v, 4) for k, v in result.items()},
        })
        model.cpu().save_pretrained(package)
        (out / "result.json").write_text(json.dumps({"result": result, "package": str(package)}, indent=1) + "\n")
    if _world() > 1:
        dist.barrier()
    return TrainResult(package, model, result)
