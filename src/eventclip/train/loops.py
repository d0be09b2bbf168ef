"""The two training stages, their batches, text embeddings, metrics and checkpoints."""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from eventclip.datasets.base import PROMPT_TEMPLATES, Item, PairedDataset
from eventclip.datasets.batching import Batcher
from eventclip.train.distributed import average_gradients, rank, world
from eventclip.train.losses import LossConfig, total_loss
from eventclip.train.recipe import StageConfig, lr_at

log = logging.getLogger(__name__)


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
        if rank() == 0:
            from eventclip._optional import available

            if available("tensorboard"):
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(folder / "tensorboard"))

    def write(self, row: dict[str, Any]) -> None:
        if rank() != 0:
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
    if rank() != 0:
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
    mine = [items[i] for i in order[rank()::world()]]
    n = len(mine) // batch_size
    if n == 0 and len(mine) >= 2:
        return [mine]
    return [mine[i * batch_size:(i + 1) * batch_size] for i in range(n)]


def _checkpoint(path: Path, state: dict[str, Any]) -> None:
    if rank() == 0:
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)


@dataclass
class Run:
    """What both stages share: the model, its data, where checkpoints and metrics go, the random
    stream and device, and whether to resume from the stage's last checkpoint."""

    model: Any
    ds: PairedDataset
    out: Path
    metrics: MetricsLog
    rng: np.random.Generator
    device: torch.device
    resume: bool


@dataclass
class Split:
    """Stage 2's items: seen classes' training and validation items, unseen classes' items, and the
    class indices on each side (unseen classes never reach f_E in training)."""

    train: list[Item]
    val: list[Item]
    unseen_items: list[Item]
    seen: list[int]
    unseen: list[int]


def train_stage1(run: Run, items: list[Item], batcher: Batcher, stage: StageConfig) -> None:
    """CLIP pre-training of f_I and f_T: each image classified against every class text (cross-entropy
    over the class texts at CLIP's learnable temperature), so no in-batch duplicate is a false negative."""
    model, ds, out, metrics, rng, device, resume = (run.model, run.ds, run.out, run.metrics, run.rng, run.device,
                                                    run.resume)
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
            average_gradients(params)
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


def train_stage2(run: Run, split: Split, batcher: Batcher, eval_batcher: Batcher, stage: StageConfig,
                 loss_cfg: LossConfig) -> dict[str, float]:
    """Train f_E with the paper's objective on seen classes; evaluate zero-shot on unseen ones every epoch.

    Returns the last epoch's figures and, as ``untrained_*``, the same figures before training (f_E = f_I).
    """
    model, ds, out, metrics, rng, device, resume = (run.model, run.ds, run.out, run.metrics, run.rng, run.device,
                                                    run.resume)
    train_items, val_items, unseen_items, seen, unseen = (split.train, split.val, split.unseen_items, split.seen,
                                                          split.unseen)
    model.freeze_clip()
    encoder = model.event_encoder
    encoder.requires_grad_(True)
    if world() > 1:
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


