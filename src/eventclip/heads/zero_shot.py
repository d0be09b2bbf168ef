"""Zero-shot: open-vocabulary classes from text embeddings, CLIP's cosine x logit multiplier -> softmax
over classes -> top-k."""

from __future__ import annotations

import numpy as np

from eventclip.heads.base import HEADS, check_dim, softmax, top_k, unit


@HEADS.register(kind="zero_shot", capabilities={"output": "labels", "needs": "prompts"})
class ZeroShotHead:
    """Open-vocabulary classes from text embeddings (C, D). ``logit_scale`` is the multiplier (CLIP: 100)."""

    kind = "zero_shot"

    def __init__(self, text_embeddings: np.ndarray, labels: list[str], logit_scale: float = 100.0, top_k: int = 5,
                 threshold: float = 0.0) -> None:
        self.text = unit(text_embeddings)
        if len(labels) != self.text.shape[0]:
            raise ValueError(f"{len(labels)} labels for {self.text.shape[0]} text embeddings")
        self.labels, self.logit_scale, self.k, self.threshold = list(labels), float(logit_scale), int(top_k), threshold

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        check_dim(emb, self.text.shape[1], "zero-shot head")
        return self.logit_scale * emb @ self.text.T

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.logits(embeddings))

    def __call__(self, embeddings: np.ndarray) -> list[list[tuple[str, float]]]:
        return top_k(self.probs(embeddings), self.labels, self.k, self.threshold)
