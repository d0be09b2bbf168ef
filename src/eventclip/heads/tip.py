"""Tip-Adapter (Zhang et al.): a training-free few-shot cache; keys = support embeddings, affinity
exp(-β(1 - cos)), class votes blended with the zero-shot logits by α."""

from __future__ import annotations

from typing import Any

import numpy as np

from eventclip.heads.base import HEADS, check_dim, softmax, top_k, unit


@HEADS.register(kind="tip", capabilities={"output": "labels", "fitted": True})
class TipAdapter:
    """Training-free few-shot cache: logits = zero-shot + α · exp(-β(1 - cos(x, keys))) @ one-hot values.

    Without text embeddings the zero-shot term is absent and the cache alone decides.
    """

    kind = "tip"

    def __init__(self, keys: np.ndarray, targets: np.ndarray, labels: list[str], *,
                 text_embeddings: np.ndarray | None = None, logit_scale: float = 100.0, alpha: float = 1.0,
                 beta: float = 5.5, top_k: int = 5) -> None:
        self.keys = unit(keys)
        self.targets = np.asarray(targets, dtype=np.int64)
        if len(self.targets) != len(self.keys) or self.targets.min() < 0 or self.targets.max() >= len(labels):
            raise ValueError(f"need one target in [0, {len(labels)}) per support embedding")
        self.labels, self.k = list(labels), int(top_k)
        self.text = unit(text_embeddings) if text_embeddings is not None else None
        self.logit_scale, self.alpha, self.beta = float(logit_scale), float(alpha), float(beta)

    @classmethod
    def fit(cls, embeddings: np.ndarray, targets: np.ndarray, labels: list[str], *,
            text_embeddings: np.ndarray | None = None, logit_scale: float = 100.0) -> TipAdapter:
        """Tip-Adapter's "fitting" is caching the support set: the same signature as
        :meth:`eventclip.heads.probe.LinearProbe.fit`, so evaluation picks either by name."""
        return cls(embeddings, targets, labels, text_embeddings=text_embeddings, logit_scale=logit_scale)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        check_dim(emb, self.keys.shape[1], "tip adapter")
        affinity = np.exp(-self.beta * (1.0 - emb @ self.keys.T))
        cache = affinity @ np.eye(len(self.labels), dtype=np.float32)[self.targets]
        # the cache term is scaled like the zero-shot logits so that α weighs like-for-like
        out = self.alpha * self.logit_scale * cache
        if self.text is not None:
            out = out + self.logit_scale * emb @ self.text.T
        return out

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.logits(embeddings))

    def __call__(self, embeddings: np.ndarray) -> list[list[tuple[str, float]]]:
        return top_k(self.probs(embeddings), self.labels, self.k)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"keys": self.keys, "targets": self.targets}
        if self.text is not None:
            arrays["text"] = self.text
        meta = {"kind": self.kind, "labels": self.labels, "top_k": self.k, "logit_scale": self.logit_scale,
                "alpha": self.alpha, "beta": self.beta}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> TipAdapter:
        return cls(arrays["keys"], arrays["targets"], meta["labels"], text_embeddings=arrays.get("text"),
                   logit_scale=meta["logit_scale"], alpha=meta["alpha"], beta=meta["beta"], top_k=meta.get("top_k", 5))
