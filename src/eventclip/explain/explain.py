"""One window of events -> event frame, zero-shot scores and the relevance map of the chosen prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eventclip.events import Geometry
from eventclip.explain.relevance import ExplainError, patch_relevance, to_frame
from eventclip.heads.prompts import embed_prompts
from eventclip.heads.zero_shot import ZeroShotHead


@dataclass
class Explanation:
    """``frame`` (H, W) as the encoder saw it before resizing (the model's grid when the representation
    counts there, else the sensor's; for polarity frames, ON + OFF);
    ``relevance`` (H, W) in [0, 1]; ``labels`` the top prompts (label, probability) best first;
    ``target`` the explained label and ``score`` its cosine with the event embedding."""

    frame: np.ndarray
    relevance: np.ndarray
    labels: list[tuple[str, float]]
    target: str
    score: float
    t_start_us: int | None = None
    t_end_us: int | None = None


def explain_events(model: Any, events: np.ndarray, geometry: Geometry, prompts: Any, *, target: str | None = None,
                   top_k: int = 5) -> Explanation:
    """Explain ``model``'s (an :class:`~eventclip.model.clip.EventClip`) view of one window of events.

    ``prompts`` is a :class:`~eventclip.heads.prompts.PromptSet`; ``target`` one of its labels
    (default: the top zero-shot label).
    """
    import torch


    rep = model.representation
    frames = rep.frames([events], geometry)
    x = torch.from_numpy(rep.model_input(frames))
    text = embed_prompts(prompts, model.encode_text_numpy)
    head = ZeroShotHead(text.classes, text.labels, model.card.logit_multiplier, top_k)
    emb = model.encode(x.numpy())
    labels = head(emb)[0]
    chosen = target if target is not None else labels[0][0]
    if chosen not in text.labels:
        raise ExplainError(f"target {chosen!r} is not a class of the prompts ({', '.join(text.labels[:10])}...)")
    vec = torch.from_numpy(text.classes[text.labels.index(chosen)])
    rel = patch_relevance(model.event_encoder, x, vec)
    frame = frames[0] if frames.ndim == 3 else frames[0].sum(axis=0)
    return Explanation(frame, to_frame(rel.patches, rep.input_size, frame.shape, rep.fit), labels, chosen, rel.score)
