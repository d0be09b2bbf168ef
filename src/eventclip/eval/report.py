"""Evaluation reports: one JSON with everything and a confusion-matrix PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as indented JSON (strict: no NaN tokens)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(report), indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    return path


def confusion_png(path: str | Path, confusion: np.ndarray, classes: list[str], title: str) -> Path:
    """Row-normalised confusion matrix (true class down, predicted across) as a PNG; labels shown up to 40 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(classes)
    side = min(12.0, 3.0 + 0.22 * n)
    fig, ax = plt.subplots(figsize=(side, side), dpi=80)
    im = ax.imshow(norm, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    if n <= 40:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=6)
        ax.set_yticks(range(n), classes, fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable lines for the terminal: the headline numbers of a report."""
    kind, res = report["protocol"], report["result"]
    lines = [f"{report['dataset']} {kind}: model {report['model']['name']} ({report['model']['hash'][:12]})"]
    if kind == "few-shot":
        for k, row in res["shots"].items():
            lines.append(f"  k={k:>2}: top-1 {100 * row['top1']['mean']:.1f} ± {100 * row['top1']['std']:.1f} %, "
                         f"top-5 {100 * row['top5']['mean']:.1f} ± {100 * row['top5']['std']:.1f} %  "
                         f"({len(res['seeds'])} seeds, {row['n_samples']} test samples)")
        lines += [f"  k={k} skipped: {why}" for k, why in res["skipped"].items()]
    else:
        lines.append(f"  top-1 {100 * res['top1']:.1f} %, top-5 {100 * res['top5']:.1f} %, mean per-class "
                     f"{100 * res['mean_per_class']:.1f} % on {res['n_samples']} samples, "
                     f"{len(res['classes'])} classes")
    return lines
