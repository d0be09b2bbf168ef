"""Zero-shot, few-shot and linear-probe evaluation of an event encoder on an :class:`EvalDataset`.

Each sample becomes one frame (its :class:`~eventclip.datasets.base.EventSlice`), built with the
model card's :class:`~eventclip.frames.preprocess.Representation` and encoded by any backend with
``encode`` / ``encode_text`` (the same ones ``eventclip classify`` uses). Heads come from
:mod:`eventclip.heads`: zero-shot is :class:`ZeroShotHead`, few-shot is Tip-Adapter or the
linear probe fitted on k support samples per class drawn from ``train`` with each seed, scored on
``test``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventclip.datasets.base import EvalDataset, EventSlice, Sample
from eventclip.datasets.reading import SampleReader
from eventclip.errors import ConfigError
from eventclip.eval.metrics import classification_metrics, mean_std, top_k_accuracy
from eventclip.events import Geometry
from eventclip.heads.base import HEADS
from eventclip.heads.classifier import as_numpy
from eventclip.heads.probe import LinearProbe
from eventclip.heads.prompts import PromptSet, embed_prompts
from eventclip.heads.zero_shot import ZeroShotHead
from eventclip.stream import EncodeStage, FrameStage

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    """Unit embeddings (N, D) of samples with their labels; ``empty`` counts samples with no events
    (they are kept, as an all-zero frame, so N always equals the number of samples)."""

    embeddings: np.ndarray
    labels: np.ndarray
    empty: int = 0


def embed_samples(samples: Sequence[Sample], encoder: Any, representation: Any, geometry: Geometry | None,
                  event_slice: EventSlice, batch_size: int = 32,
                  progress: Callable[[int, int], None] | None = None) -> Embedded:
    """Encode every sample's sliced events as one frame. ``geometry`` (width, height) is for files that
    do not carry it; the samples of one batch must share their geometry. Frames and encoder are the
    stages of :mod:`eventclip.stream`, as ``eventclip classify`` and the daemon run them."""
    frames, encode = FrameStage(representation), EncodeStage(encoder)
    out, empty = [], 0
    read = SampleReader(geometry)
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        events_list, batch_geometry = [], None
        for sample in batch:
            events, geo = read(sample)
            if batch_geometry is not None and geo != batch_geometry:
                raise ConfigError(f"{sample.path}: geometry {geo} differs from {batch_geometry} of the other "
                                  "samples; pass the sensor geometry so that all files agree")
            batch_geometry = geo
            events = event_slice(events, sample.key())
            empty += len(events) == 0
            events_list.append(events)
        out.append(encode(frames.of_events(events_list, batch_geometry)))
        if progress is not None:
            progress(min(start + batch_size, len(samples)), len(samples))
    if empty:
        log.warning("%d of %d samples have no events in their slice; they are encoded as empty frames", empty,
                    len(samples))
    emb = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    return Embedded(emb, np.array([s.label for s in samples], dtype=np.int64), empty)


def class_text_embeddings(encode_text: Callable[[list[str]], Any], texts: Sequence[str],
                          templates: Sequence[str]) -> np.ndarray:
    """(C, D) unit text embeddings: each class text under every template, averaged (CLIP's ensemble)."""
    prompts = PromptSet(templates=list(templates), classes=[{"name": t} for t in texts])
    return embed_prompts(prompts, lambda p: as_numpy(encode_text(p))).classes


def prompt_file_embeddings(encode_text: Callable[[list[str]], Any], prompts: Any, classes: Sequence[str],
                           source: str) -> np.ndarray:
    """(C, D) text embeddings for ``classes`` from a prompts file (its templates and synonyms), in the
    dataset's class order; every dataset class must be in the file (extra file classes are unused)."""
    missing = [c for c in classes if c not in prompts.labels]
    if missing:
        raise ConfigError(f"{source}: classes {missing[:8]}{'...' if len(missing) > 8 else ''} of the dataset have no "
                          "entry in the prompts file (names must match the dataset's class names)")
    emb = embed_prompts(prompts, lambda p: as_numpy(encode_text(p)))
    return emb.classes[[emb.labels.index(c) for c in classes]]


def _candidates(ds: EvalDataset) -> list[int]:
    return list(range(len(ds.classes))) if ds.candidates is None else list(ds.candidates)


def zero_shot(test: Embedded, text: np.ndarray, ds: EvalDataset, logit_scale: float) -> dict[str, Any]:
    """Zero-shot metrics on ``test`` among the dataset's candidate classes."""
    cands = _candidates(ds)
    local = {c: i for i, c in enumerate(cands)}
    keep = np.array([int(y) in local for y in test.labels], dtype=bool)
    names = [ds.classes[c] for c in cands]
    head = ZeroShotHead(text[cands], names, logit_scale)
    scores = head.logits(test.embeddings[keep]) if keep.any() else np.zeros((0, len(cands)))
    labels = np.array([local[int(y)] for y in test.labels[keep]], dtype=np.int64)
    return {"classes": names, **classification_metrics(scores, labels, names)}


def _support(labels: np.ndarray, n_classes: int, k: int, rng: np.random.Generator) -> np.ndarray:
    idx = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in range(n_classes)]
    return np.concatenate(idx)


def _head(method: str, x: np.ndarray, y: np.ndarray, names: list[str], text: np.ndarray, scale: float):
    """A fitted label head (``tip``, ``probe``: the registry's heads with ``fitted`` and label output)."""
    few_shot = HEADS.choices_where(output="labels", fitted=True)
    if method not in few_shot:
        raise ConfigError(f"--head {method!r} is unknown; use one of {', '.join(few_shot)}")
    return HEADS[method].fit(x, y, names, text_embeddings=text, logit_scale=scale)


def few_shot(train: Embedded, test: Embedded, text: np.ndarray, ds: EvalDataset, logit_scale: float,
             shots: Sequence[int], seeds: int, method: str = "tip") -> dict[str, Any]:
    """Per k in ``shots``: top-1 / top-5 mean ± std over ``seeds`` support draws (seeds 0..seeds-1).

    A k larger than the smallest class's train count is reported under ``skipped`` with the reason,
    never silently dropped. ``metrics`` holds the full metrics (per class, confusion) of seed 0 at the
    largest k that ran.
    """
    names = list(ds.classes)
    counts = np.bincount(train.labels, minlength=len(names))
    fewest = int(counts.min()) if len(counts) else 0
    result: dict[str, Any] = {"method": method, "seeds": list(range(seeds)), "shots": {}, "skipped": {}}
    for k in shots:
        if k > fewest:
            worst = names[int(np.argmin(counts))]
            result["skipped"][str(k)] = f"class {worst!r} has {fewest} train samples, fewer than k={k}"
            log.warning("few-shot k=%d skipped: %s", k, result["skipped"][str(k)])
            continue
        top1, top5 = [], []
        for seed in range(seeds):
            sup = _support(train.labels, len(names), k, np.random.default_rng(seed))
            head = _head(method, train.embeddings[sup], train.labels[sup], names, text, logit_scale)
            scores = head.logits(test.embeddings)
            top1.append(top_k_accuracy(scores, test.labels, 1))
            top5.append(top_k_accuracy(scores, test.labels, 5))
            if seed == 0:
                result["metrics"] = {"k": k, "classes": names,
                                     **classification_metrics(scores, test.labels, names)}
        result["shots"][str(k)] = {"top1": mean_std(top1), "top5": mean_std(top5), "n_samples": int(len(test.labels))}
    if not result["shots"]:
        raise ConfigError(f"no --shots value fits: the smallest class has {fewest} train samples")
    return result


def linear_probe(train: Embedded, test: Embedded, text: np.ndarray, ds: EvalDataset,
                 logit_scale: float) -> dict[str, Any]:
    """The linear probe fitted on every train sample (started from the zero-shot weights), scored on test."""
    if len(train.labels) == 0:
        raise ConfigError(f"{ds.root}: the train split is empty; a linear probe needs labelled train samples")
    names = list(ds.classes)
    head = LinearProbe.fit(train.embeddings, train.labels, names, text_embeddings=text, logit_scale=logit_scale)
    return {"classes": names, "n_train": int(len(train.labels)),
            **classification_metrics(head.logits(test.embeddings), test.labels, names)}
