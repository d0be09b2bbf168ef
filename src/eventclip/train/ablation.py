"""The paper's loss ablation (its Fig. 4) on the synthetic benchmark, plus video events and few-shot.

Protocol: one stage-1 CLIP (shared by every run, so only the event objective varies); for each
loss combination and seed, f_E restarts from f_I and trains on the events of seen classes; then

* zero-shot top-1 on the unseen classes' recordings (candidates: unseen classes only);
* zero-shot top-1 on events made from *video of the unseen classes' paired images*: a slow
  zoom-and-pan camera move over the still image (16 frames), converted by the paper's
  frame-difference mode (:class:`eventclip.sensors.video_events.VideoToEvents`, threshold 10 on 0–255),
  i.e. a different motion and a different event model than the saccade recordings;
* few-shot top-1 on unseen classes with k = 1, 2, 5 support recordings per class (the rest are
  queries), with the model helper's Tip-Adapter and linear-probe heads.

Results are written as JSON and as a Markdown table with mean ± std over seeds.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eventclip.datasets.base import Item, PairedDataset, split_classes, split_items
from eventclip.datasets.batching import Batcher
from eventclip.datasets.cache import EventCache
from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.heads.probe import LinearProbe
from eventclip.heads.tip import TipAdapter
from eventclip.model.clip import EventClip
from eventclip.sensors.video_events import VideoToEvents
from eventclip.train.loops import (
    MetricsLog,
    Run,
    Split,
    class_text_embeddings,
    embed_items,
    top1,
    train_stage1,
    train_stage2,
)
from eventclip.train.losses import LossConfig
from eventclip.train.recipe import Recipe
from eventclip.train.synth import luminance
from eventclip.train.trainer import prepare_data

CONFIGS: dict[str, dict[str, bool]] = {
    "ct": {"ct": True, "zs": False, "kl": False},
    "ct+zs": {"ct": True, "zs": True, "kl": False},
    "ct+kl": {"ct": True, "zs": False, "kl": True},
    "ct+zs+kl": {"ct": True, "zs": True, "kl": True},
}
SHOTS = (1, 2, 5)
VIDEO_FRAMES = 16


def video_events(image: np.ndarray, rng: np.random.Generator, frame_us: int = 33_333) -> np.ndarray:
    """Events from a 16-frame zoom-and-pan video of a still RGB image (paper mode, threshold 10)."""
    import cv2


    h, w = image.shape[:2]
    gray = luminance(image.astype(np.float32) / 255.0)
    conv = VideoToEvents("paper", threshold=10.0)
    direction = rng.uniform(-1, 1, 2)
    parts = []
    for i in range(VIDEO_FRAMES):
        f = i / (VIDEO_FRAMES - 1)
        zoom = 1.0 + 0.12 * f
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, zoom)
        m[:, 2] += direction * 3.0 * f
        frame = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        parts.append(conv.push((frame * 255).round().astype(np.uint8), i * frame_us))

    out = np.empty(sum(len(p) for p in parts), dtype=EVENT_DTYPE)
    out[:] = np.concatenate(parts).astype(EVENT_DTYPE)
    return out


@torch.no_grad()
def embed_video_events(model, rep, cache: EventCache, items: list[Item], seed: int) -> torch.Tensor:
    """f_E embeddings of video events made from each item's paired image (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    out = []
    model.eval()
    for it in items:
        img = cache.image(it.image)
        ev = video_events(img, rng)
        x = torch.from_numpy(rep([ev], Geometry(img.shape[1], img.shape[0])))
        out.append(model.encode_frames(x.to(model._device())).float().cpu())
    return torch.cat(out)


def few_shot(emb: torch.Tensor, labels: np.ndarray, text: np.ndarray, classes: list[int], k: int,
             seed: int, logit_scale: float) -> dict[str, float]:
    """Top-1 of Tip-Adapter and a linear probe from k support embeddings per class; the rest are queries."""
    rng = np.random.default_rng(seed)
    sup, qry = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        sup += idx[:k].tolist()
        qry += idx[k:].tolist()
    if not qry:
        return {}
    x = emb.numpy()
    local = {c: i for i, c in enumerate(classes)}
    y_sup = np.array([local[int(v)] for v in labels[sup]])
    y_qry = np.array([local[int(v)] for v in labels[qry]])
    names = [str(c) for c in classes]
    tip = TipAdapter(x[sup], y_sup, names, text_embeddings=text[classes], logit_scale=logit_scale)
    probe = LinearProbe.fit(x[sup], y_sup, names, text_embeddings=text[classes], logit_scale=logit_scale)
    return {"tip": float((tip.logits(x[qry]).argmax(1) == y_qry).mean()),
            "probe": float((probe.logits(x[qry]).argmax(1) == y_qry).mean())}


def run_ablation(recipe: Recipe, out: str | Path, seeds: list[int], stage1_from: str | Path | None = None,
                 configs: list[str] | None = None) -> dict[str, Any]:
    """Run every (loss combination, seed); returns and writes ``<out>/ablation.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    torch.manual_seed(recipe.seed)
    ds: PairedDataset = prepare_data(recipe, Path(stage1_from) if stage1_from else out)
    rep = recipe.representation_model()
    seen, unseen = split_classes(len(ds.classes), recipe.split.unseen_fraction, recipe.split.seed)
    seen_train, seen_val = split_items(ds.subset(set(seen)), recipe.split.val_per_class, recipe.split.seed)
    unseen_items = ds.subset(set(unseen))
    cache = EventCache(ds.geometry)
    model = EventClip.from_clip(recipe.model, representation=rep.model_dump(mode="json"), seed=recipe.seed)
    device = torch.device("cpu")
    metrics = MetricsLog(out)
    rng = np.random.default_rng(recipe.seed)
    if stage1_from is not None:
        state = torch.load(Path(stage1_from) / "stage1.pt", weights_only=True, map_location="cpu")
        model.load_state_dict(state["model"])
        model.event_encoder.load_state_dict(model.image_encoder.state_dict())
        model.freeze_clip()
    elif recipe.stage1 is not None:
        train_stage1(Run(model, ds, out, metrics, rng, device, resume=True), seen_train + seen_val + unseen_items,
                     Batcher(cache, rep, recipe.augment_config(1)), recipe.stage1)
    model.logit_scale.requires_grad_(False)
    start_state = copy.deepcopy(model.event_encoder.state_dict())
    text_all = class_text_embeddings(model, ds.texts).float()
    scale = float(model.logit_scale.detach().exp())
    labels_u = np.array([it.label for it in unseen_items])
    results: dict[str, Any] = {"runs": [], "seen": [ds.classes[i] for i in seen],
                               "unseen": [ds.classes[i] for i in unseen], "recipe": recipe.model_dump(mode="json")}
    # The untrained starting point (f_E = f_I) as a reference row.
    model.event_encoder.load_state_dict(start_state)
    results["f_I_init"] = _evaluate(model, rep, cache, unseen_items, labels_u, text_all, unseen, scale, seed=0)
    for name in configs or list(CONFIGS):
        loss_cfg = LossConfig(**{**recipe.losses, **CONFIGS[name]})
        for seed in seeds:
            model.event_encoder.load_state_dict(start_state)
            torch.manual_seed(seed)
            run_dir = out / f"{name}_seed{seed}"
            run_dir.mkdir(exist_ok=True)
            t0 = time.time()
            train_stage2(Run(model, ds, run_dir, MetricsLog(run_dir), np.random.default_rng(seed), device, resume=True),
                         Split(seen_train, seen_val, unseen_items, seen, unseen),
                         Batcher(cache, rep, recipe.augment_config()), Batcher(cache, rep, None), recipe.stage2,
                         loss_cfg)
            row = {"losses": name, "seed": seed, "train_s": round(time.time() - t0, 1),
                   **_evaluate(model, rep, cache, unseen_items, labels_u, text_all, unseen, scale, seed)}
            results["runs"].append(row)
            (out / "ablation.json").write_text(json.dumps(results, indent=1) + "\n")
    results["wall_time_s"] = round(time.time() - started, 1)
    results["table"] = markdown_table(results)
    (out / "ablation.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def _evaluate(model, rep, cache, unseen_items, labels_u, text_all, unseen, scale, seed) -> dict[str, float]:
    batcher = Batcher(cache, rep, None)
    emb = embed_items(model, batcher, unseen_items)
    row = {"zero_shot": top1(emb, torch.from_numpy(labels_u), text_all, unseen)}
    vid = embed_video_events(model, rep, cache, unseen_items, seed=1234)
    row["video_zero_shot"] = top1(vid, torch.from_numpy(labels_u), text_all, unseen)
    for k in SHOTS:
        for head, acc in few_shot(emb, labels_u, text_all.numpy(), unseen, k, seed, scale).items():
            row[f"{head}_{k}shot"] = acc
    return row


def markdown_table(results: dict[str, Any]) -> str:
    """Mean ± std (population std over seeds), in %, one row per loss combination."""
    runs = results["runs"]
    cols = [c for c in runs[0] if c not in ("losses", "seed", "train_s")] if runs else []
    lines = ["| losses | seeds | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    init = results.get("f_I_init")
    if init:
        lines.append("| none (f_E = f_I, untrained) | – | " + " | ".join(
            f"{100 * init.get(c, float('nan')):.1f}" for c in cols) + " |")
    for name in dict.fromkeys(r["losses"] for r in runs):
        rows = [r for r in runs if r["losses"] == name]
        cells = []
        for c in cols:
            v = np.array([r[c] for r in rows]) * 100
            cells.append(f"{v.mean():.1f} ± {v.std():.1f}")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
