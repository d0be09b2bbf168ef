"""Linear probe: softmax regression on unit embeddings, fitted on k labelled support windows per class
and started from the zero-shot classifier."""

from __future__ import annotations

from typing import Any

import numpy as np

from eventclip.heads.base import HEADS, check_dim, softmax, top_k, unit


@HEADS.register(kind="probe", capabilities={"output": "labels", "fitted": True})
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
