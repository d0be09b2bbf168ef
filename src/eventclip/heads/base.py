"""What every head shares: unit vectors, softmax, top-k, the dimension check, and the per-window Result.

Heads turn embeddings (B, D) into labels and anomaly scores with numpy only, so the daemon runs them
without torch. Embeddings passed in need not be normalised; every head normalises them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventclip.plugins import Registry

HEADS: Registry[type] = Registry("head", "eventclip.heads")
"""Every head class, by ``kind``, with its capabilities: ``output`` (``labels`` or ``anomaly``),
``needs`` (``prompts`` when it is built from text embeddings) and ``fitted`` (fitted on support
windows and stored in a model package as ``heads/<name>.npz``). Heads take their settings from the
prompts file and the package, so they register no config model (like file formats)."""


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


def check_dim(emb: np.ndarray, d: int, what: str) -> None:
    if emb.shape[1] != d:
        raise ValueError(f"{what}: embeddings have {emb.shape[1]} dimensions but the head expects {d}")


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
