"""Few-shot heads fitted on k labelled support windows per class.

* :class:`LinearProbe`: softmax regression on unit embeddings, started from the zero-shot classifier.
* :class:`TipAdapter`: training-free cache (Zhang et al., Tip-Adapter): keys = support embeddings,
  affinity exp(-β(1 - cos)), class votes blended with the zero-shot logits by α.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eventclip.heads.base import check_dim, softmax, top_k, unit


class LinearProbe:
    """Softmax regression W (D, C), b (C) on unit embeddings, fitted by full-batch gradient descent.

    Starts from the zero-shot classifier when text embeddings are given (so k=1 is not worse than
    chance), with L2 pull towards that start (``weight_decay``).
    """

    kind = "probe"

    def __init__(self, weight: np.ndarray, bias: np.ndarray, labels: list[str], top_k: int = 5) -> None:
        self.weight, self.bias = np.asarray(weight, np.float32), np.asarray(bias, np.float32)
        self.labels, self.k = list(labels), int(top_k)

    @classmethod
    def fit(cls, embeddings: np.ndarray, targets: np.ndarray, labels: list[str], *,
            text_embeddings: np.ndarray | None = None, logit_scale: float = 100.0, steps: int = 500,
            lr: float = 2.0, weight_decay: float = 1e-4, top_k: int = 5) -> LinearProbe:
        """Fit on (N, D) support embeddings with integer ``targets`` indexing ``labels``.

        ``lr`` 2.0 is stable for unit-norm inputs (the loss curvature is at most 1/2).
        """
        x = unit(embeddings).astype(np.float64)
        y = np.asarray(targets, dtype=np.int64)
        n_classes = len(labels)
        if len(y) != len(x) or len(x) == 0 or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"need one target in [0, {n_classes}) per embedding; got {len(y)} targets for {len(x)}")
        if text_embeddings is not None:
            w0 = unit(text_embeddings).T.astype(np.float64) * logit_scale
        else:
            w0 = np.zeros((x.shape[1], n_classes))
        w, b = w0.copy(), np.zeros(n_classes)
        onehot = np.eye(n_classes)[y]
        for _ in range(steps):
            grad = (softmax(x @ w + b) - onehot) / len(x)
            w -= lr * (x.T @ grad + weight_decay * (w - w0))
            b -= lr * grad.sum(axis=0)
        return cls(w.astype(np.float32), b.astype(np.float32), labels, top_k)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        check_dim(emb, self.weight.shape[0], "linear probe")
        return emb @ self.weight + self.bias

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.logits(embeddings))

    def __call__(self, embeddings: np.ndarray) -> list[list[tuple[str, float]]]:
        return top_k(self.probs(embeddings), self.labels, self.k)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weight": self.weight, "bias": self.bias}, {"kind": self.kind, "labels": self.labels, "top_k": self.k}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LinearProbe:
        return cls(arrays["weight"], arrays["bias"], meta["labels"], meta.get("top_k", 5))


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
