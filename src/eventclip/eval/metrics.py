"""Classification metrics from a score matrix: top-k, per-class accuracy, confusion, mean ± std.

``scores`` is (N, C) (any monotone score: logits or probabilities), ``labels`` (N,) ints in [0, C).
Plain numpy; ties are broken towards the lower class index (stable sort), the same everywhere.
"""

from __future__ import annotations

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores), np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores must be (N, C) with one label per row; got {scores.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]})")
    return scores, labels


def ranking(scores: np.ndarray) -> np.ndarray:
    """Class indices per row, best first (stable: ties go to the lower index)."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k best scores (k capped at C); NaN for no rows."""
    scores, labels = _check(scores, labels)
    if len(labels) == 0:
        return float("nan")
    top = ranking(scores)[:, : min(k, scores.shape[1])]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix; NaN for classes with no samples."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def classification_metrics(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Top-1, top-5, mean per-class accuracy, per-class accuracy and counts, confusion matrix, N."""
    scores, labels = _check(scores, labels)
    pred = ranking(scores)[:, 0] if len(labels) else np.zeros(0, np.int64)
    cm = confusion_matrix(labels, pred, len(classes))
    per_class = per_class_accuracy(cm)
    present = ~np.isnan(per_class)
    return {
        "n_samples": int(len(labels)),
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
        "mean_per_class": float(per_class[present].mean()) if present.any() else float("nan"),
        "per_class": {c: {"accuracy": None if np.isnan(a) else float(a), "n": int(n)}
                      for c, a, n in zip(classes, per_class, cm.sum(axis=1), strict=True)},
        "confusion": cm.tolist(),
    }


def mean_std(values: list[float]) -> dict:
    """Mean and population std (ddof=0) of per-seed values, with the values themselves."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": [float(v) for v in arr]}
