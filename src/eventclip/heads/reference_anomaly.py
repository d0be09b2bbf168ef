"""Anomaly from a bank of normal embeddings: kNN cosine distance mapped to [0, 1] so that the chosen
quantile of normal windows scores exactly 0.5: score = d / (d + d_q)."""

from __future__ import annotations

from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.heads.base import HEADS, check_dim, unit


def _knn_distance(emb: np.ndarray, bank: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Mean cosine distance (1 - cos, in [0, 2]) to the k nearest bank entries, per row of ``emb``."""
    dist = 1.0 - emb @ bank.T
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    k = min(k, bank.shape[0] - (1 if exclude_self else 0))
    return np.sort(np.partition(dist, k - 1, axis=1)[:, :k], axis=1).mean(axis=1)


@HEADS.register(kind="reference_anomaly", capabilities={"output": "anomaly", "fitted": True})
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
        check_dim(emb, self.bank.shape[1], "reference anomaly")
        return _knn_distance(emb, self.bank, self.k)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        d = np.maximum(self.distance(embeddings), 0.0)
        return d / (d + self.d_q)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"bank": self.bank}, {"kind": self.kind, "d_q": self.d_q, "k": self.k, "quantile": self.quantile}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ReferenceAnomaly:
        return cls(arrays["bank"], meta["d_q"], meta["k"], meta["quantile"])
