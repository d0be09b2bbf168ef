"""Anomaly from prompts: probability mass on "abnormal" descriptions vs "normal" ones, in [0, 1]."""

from __future__ import annotations

import numpy as np

from eventclip.heads.base import HEADS, check_dim, softmax, unit


@HEADS.register(kind="prompt_anomaly", capabilities={"output": "anomaly", "needs": "prompts"})
class PromptAnomaly:
    """Score in [0, 1]: softmax probability mass on abnormal descriptions among normal + abnormal ones.

    0.5 means the window matches both sets equally; ~1 means it looks like an abnormal description.
    """

    kind = "prompt_anomaly"

    def __init__(self, normal: np.ndarray, abnormal: np.ndarray, logit_scale: float = 100.0) -> None:
        self.normal, self.abnormal, self.logit_scale = unit(normal), unit(abnormal), float(logit_scale)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        check_dim(emb, self.normal.shape[1], "prompt anomaly")
        probs = softmax(self.logit_scale * emb @ np.concatenate([self.normal, self.abnormal]).T)
        return probs[:, len(self.normal):].sum(axis=1)
