"""Heads: embeddings (B, D) -> labels and anomaly scores. numpy only, so the daemon runs without torch.

* :class:`ZeroShotHead`: cosine × logit multiplier -> softmax over classes -> top-k.
* :class:`LinearProbe`: softmax regression fitted on k labelled support windows per class.
* :class:`TipAdapter`: training-free cache (Zhang et al., Tip-Adapter): keys = support embeddings,
  affinity exp(-β(1 - cos)), class votes blended with the zero-shot logits by α.
* :class:`PromptAnomaly`: probability mass on "abnormal" descriptions vs "normal" ones, in [0, 1].
* :class:`ReferenceAnomaly`: kNN cosine distance to a bank of normal embeddings, mapped to [0, 1]
  so that the chosen quantile of normal windows scores exactly 0.5: score = d / (d + d_q).
* :class:`Ema`: temporal smoothing of a score stream.

Embeddings passed in need not be normalised; every head normalises them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventclip.errors import ConfigError


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (B, D), got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_k(probs: np.ndarray, labels: list[str], k: int, threshold: float = 0.0) -> list[list[tuple[str, float]]]:
    """Per row the k most probable (label, probability), best first, dropping those below ``threshold``."""
    k = min(k, probs.shape[1])
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(labels[j], float(row[j])) for j in order if row[j] >= threshold]
            for row, order in zip(probs, idx, strict=True)]


def _check_dim(emb: np.ndarray, d: int, what: str) -> None:
    if emb.shape[1] != d:
        raise ValueError(f"{what}: embeddings have {emb.shape[1]} dimensions but the head expects {d}")


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
        _check_dim(emb, self.text.shape[1], "zero-shot head")
        return self.logit_scale * emb @ self.text.T

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.logits(embeddings))

    def __call__(self, embeddings: np.ndarray) -> list[list[tuple[str, float]]]:
        return top_k(self.probs(embeddings), self.labels, self.k, self.threshold)


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
        _check_dim(emb, self.weight.shape[0], "linear probe")
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
        _check_dim(emb, self.keys.shape[1], "tip adapter")
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


class PromptAnomaly:
    """Score in [0, 1]: softmax probability mass on abnormal descriptions among normal + abnormal ones.

    0.5 means the window matches both sets equally; ~1 means it looks like an abnormal description.
    """

    kind = "prompt_anomaly"

    def __init__(self, normal: np.ndarray, abnormal: np.ndarray, logit_scale: float = 100.0) -> None:
        self.normal, self.abnormal, self.logit_scale = unit(normal), unit(abnormal), float(logit_scale)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        _check_dim(emb, self.normal.shape[1], "prompt anomaly")
        probs = softmax(self.logit_scale * emb @ np.concatenate([self.normal, self.abnormal]).T)
        return probs[:, len(self.normal):].sum(axis=1)


def _knn_distance(emb: np.ndarray, bank: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Mean cosine distance (1 - cos, in [0, 2]) to the k nearest bank entries, per row of ``emb``."""
    dist = 1.0 - emb @ bank.T
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    k = min(k, bank.shape[0] - (1 if exclude_self else 0))
    return np.sort(np.partition(dist, k - 1, axis=1)[:, :k], axis=1).mean(axis=1)


class ReferenceAnomaly:
    """Distance to a bank of normal embeddings, calibrated: score = d / (d + d_q) in [0, 1).

    d is the mean cosine distance to the k nearest bank entries; d_q is the ``quantile`` of the
    same distance over the bank's own windows (each left out of its own neighbours). So a window
    as far from normal as the q-quantile normal window scores 0.5; identical to a bank entry, 0.
    """

    kind = "reference_anomaly"

    def __init__(self, bank: np.ndarray, d_q: float, k: int = 1, quantile: float = 0.95) -> None:
        self.bank, self.d_q, self.k, self.quantile = unit(bank), float(d_q), int(k), float(quantile)

    @classmethod
    def fit(cls, normal_embeddings: np.ndarray, k: int = 1, quantile: float = 0.95) -> ReferenceAnomaly:
        bank = unit(normal_embeddings)
        if bank.shape[0] < k + 1:
            raise ConfigError(f"the normal recording gave {bank.shape[0]} windows; need at least {k + 1} for k={k} "
                              "(use a longer recording or shorter windows)")
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
        d = _knn_distance(bank, bank, k, exclude_self=True)
        return cls(bank, max(float(np.quantile(d, quantile)), 1e-6), k, quantile)

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        emb = unit(embeddings)
        _check_dim(emb, self.bank.shape[1], "reference anomaly")
        return _knn_distance(emb, self.bank, self.k)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        d = np.maximum(self.distance(embeddings), 0.0)
        return d / (d + self.d_q)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"bank": self.bank}, {"kind": self.kind, "d_q": self.d_q, "k": self.k, "quantile": self.quantile}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ReferenceAnomaly:
        return cls(arrays["bank"], meta["d_q"], meta["k"], meta["quantile"])


@dataclass
class Ema:
    """Exponential moving average s ← α·x + (1-α)·s over successive windows (α=1: no smoothing)."""

    alpha: float = 0.3
    state: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"EMA alpha must be in (0, 1], got {self.alpha}")

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        out = np.empty(len(scores), dtype=np.float64)
        for i, x in enumerate(np.asarray(scores, dtype=np.float64)):
            self.state = x if self.state is None else self.alpha * x + (1.0 - self.alpha) * self.state
            out[i] = self.state
        return out


HEAD_TYPES = {c.kind: c for c in (LinearProbe, TipAdapter, ReferenceAnomaly)}


def head_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]):
    """Rebuild a saved head (probe, tip or reference anomaly) from its arrays and meta."""
    kind = meta.get("kind")
    if kind not in HEAD_TYPES:
        raise ConfigError(f"unknown head kind {kind!r}; expected one of {sorted(HEAD_TYPES)}")
    return HEAD_TYPES[kind].from_arrays(arrays, meta)


@dataclass
class Result:
    """What one window produced; the daemon publishes it. Times in µs of sensor time, [t_start, t_end).

    ``labels``: (label, probability) best first. ``anomaly``: score in [0, 1] or None when no
    anomaly source is configured; ``flag``: anomaly ≥ threshold.
    """

    t_start_us: int
    t_end_us: int
    labels: list[tuple[str, float]] = field(default_factory=list)
    anomaly: float | None = None
    flag: bool = False
    n_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_start_us": self.t_start_us,
            "t_end_us": self.t_end_us,
            "n_events": self.n_events,
            "labels": [{"label": lab, "score": round(p, 6)} for lab, p in self.labels],
            "anomaly": None if self.anomaly is None else round(float(self.anomaly), 6),
            "flag": self.flag,
        }
