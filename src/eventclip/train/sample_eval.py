"""How often a model names the right category in a labelled sample recording, window by window.

Why: the bundled sample is what a new user sees first (``eventclipd --demo``); its top-1 is the
figure that says whether the demo shows mostly right labels. It runs the same path the daemon
does (fixed windows of the card's ``window_us``, zero-shot against the model's class texts under
its prompt templates), so the number is the demo's, not an offline proxy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def segment_of(segments: list[dict[str, Any]], t_start_us: int, t_end_us: int) -> dict[str, Any] | None:
    """The labelled segment holding most of the window [t_start_us, t_end_us) (µs), or None if none overlaps."""
    best, overlap = None, 0
    for seg in segments:
        o = min(t_end_us, seg["t_end_us"]) - max(t_start_us, seg["t_start_us"])
        if o > overlap:
            best, overlap = seg, o
    return best


def sample_accuracy(model: Any, recording: str | Path, texts: list[str], templates: list[str],
                    labels_json: str | Path | None = None) -> dict[str, float]:
    """Top-1 and top-3 over the windows of ``recording`` that overlap a labelled segment.

    ``model`` is an :class:`~eventclip.model.clip.EventClip` (in memory, trained or not); ``texts``
    the class texts it knows, in the order of its classes, and ``templates`` its prompt templates.
    ``labels_json`` is the sample's segment file (default: beside the recording, ``.json``).
    Returns ``top1``, ``top3`` (fractions) and ``windows`` (how many were scored).
    """
    from eventclip.heads.classifier import Classifier
    from eventclip.heads.prompts import PromptSet, embed_prompts
    from eventclip.heads.zero_shot import ZeroShotHead
    from eventclip.stream import classify_file

    recording = Path(recording)
    info = json.loads(Path(labels_json or recording.with_suffix(".json")).read_text())
    prompts = PromptSet(classes=list(texts), templates=list(templates), top_k=3)
    emb = embed_prompts(prompts, model.encode_text_numpy)
    rep = model.representation
    clf = Classifier(model, rep, ZeroShotHead(emb.classes, emb.labels, model.card.logit_multiplier, 3))
    top1, top3 = [], []
    for result in classify_file(recording, clf, rep.window_us):
        seg = segment_of(info["segments"], result.t_start_us, result.t_end_us)
        if seg is None or result.n_events == 0:
            continue
        names = [label for label, _ in result.labels]
        top1.append(names[0] == seg["text"])
        top3.append(seg["text"] in names)
    return {"top1": float(np.mean(top1)) if top1 else float("nan"),
            "top3": float(np.mean(top3)) if top3 else float("nan"), "windows": len(top1)}
