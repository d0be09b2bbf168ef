"""Parity between an exported encoder and the PyTorch reference, on frames from a real recording.

Why: an export that runs is not an export that is right. Every export ends here: both encoders see
the same model inputs built from real events (the bundled sample recording unless the user gives
one), and we compare their L2-normalised embeddings by max abs difference, cosine similarity, and
top-1 agreement of zero-shot labels against a fixed text matrix. Tolerances depend on the precision
and are documented in docs/deploy.md; past them the export fails with ParityError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from eventclip.errors import EventclipError
from eventclip.events import Geometry

TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs": 1e-4, "min_cosine": 0.9999, "top1": 1.0},
    "fp16": {"max_abs": 1e-2, "min_cosine": 0.999, "top1": 0.9},
    "int8": {"max_abs": 0.25, "min_cosine": 0.9, "top1": 0.5},
}
"""Per precision: the largest allowed |a-b| of any embedding element, the smallest allowed cosine
similarity of any pair of embeddings, and the smallest allowed share of windows whose top-1 zero-shot
label agrees. INT8 bounds are loose on purpose: on random or weakly trained weights the zero-shot
scores are nearly tied, so top-1 flips on tiny changes; the report gives the measured figures."""

PARITY_PROMPTS = (
    "a car", "a person walking", "a bicycle", "a dog", "a bird", "a tree", "a building", "a hand",
    "a face", "a ball", "a digit", "a letter", "an airplane", "a boat", "a cat", "a flower",
)
"""A fixed everyday vocabulary for the top-1 check when no prompts file is given."""


class ParityError(EventclipError):
    """The exported model disagrees with PyTorch beyond the documented tolerance."""


@dataclass(frozen=True)
class ParityReport:
    """Agreement of ``candidate`` with ``reference`` embeddings over ``n`` real windows."""

    name: str
    precision: str
    n: int
    max_abs: float
    min_cosine: float
    mean_cosine: float
    top1: float

    def failures(self, tolerance: dict[str, float] | None = None) -> list[str]:
        """The tolerances this report breaks (empty when it passes)."""
        tol = tolerance or TOLERANCES[self.precision]
        out = []
        if self.max_abs > tol["max_abs"]:
            out.append(f"max abs diff {self.max_abs:.3g} > {tol['max_abs']:g}")
        if self.min_cosine < tol["min_cosine"]:
            out.append(f"min cosine {self.min_cosine:.6f} < {tol['min_cosine']:g}")
        if self.top1 < tol["top1"]:
            out.append(f"top-1 agreement {self.top1:.1%} < {tol['top1']:.0%}")
        return out

    def check(self, tolerance: dict[str, float] | None = None) -> ParityReport:
        """Return self, or raise ParityError listing each broken tolerance."""
        bad = self.failures(tolerance)
        if bad:
            raise ParityError(
                f"{self.name} ({self.precision}) disagrees with PyTorch on {self.n} real windows: {'; '.join(bad)}. "
                "Re-export at a higher precision, or check the opset and the installed onnxruntime"
            )
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.name} [{self.precision}] n={self.n} max|Δ|={self.max_abs:.2e} "
            f"cos min={self.min_cosine:.6f} mean={self.mean_cosine:.6f} top-1={self.top1:.1%}"
        )


def compare(
    reference: np.ndarray, candidate: np.ndarray, text: np.ndarray, *, name: str, precision: str
) -> ParityReport:
    """Compare two (N,D) embedding sets; ``text`` (K,D) normalised text embeddings for top-1 labels."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2:
        raise ParityError(f"{name}: embeddings shaped {cand.shape}, PyTorch gives {ref.shape}")
    cos = (ref * cand).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1), 1e-12)
    t = np.asarray(text, dtype=np.float64)
    agree = (ref @ t.T).argmax(1) == (cand @ t.T).argmax(1)
    return ParityReport(
        name=name,
        precision=precision,
        n=len(ref),
        max_abs=float(np.abs(ref - cand).max()),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        top1=float(agree.mean()),
    )


def recording_windows(
    path: str | Path, window_us: int, max_windows: int = 16, min_events: int = 1
) -> tuple[list[np.ndarray], Geometry]:
    """Up to ``max_windows`` non-empty, time-aligned windows of ``window_us`` µs from a real recording.

    Recordings shorter than ``max_windows`` windows are cut into shorter windows instead, so a
    short file still gives several different frames.

    Returns (list of event arrays, Geometry). Raises ParityError when the file yields no window with
    at least ``min_events`` events, naming the file.
    """
    from eventclip.events import as_events
    from eventclip.io import read_events

    chunk = read_events(path)
    ev = as_events(chunk.events)
    if len(ev) == 0:
        raise ParityError(f"{path}: holds no events; give a recording with events (--recording)")
    span = int(ev["t"][-1]) - int(ev["t"][0]) + 1
    window_us = max(1, min(int(window_us), -(-span // max_windows)))  # short files: shorter windows, several of them
    t0 = int(ev["t"][0]) - int(ev["t"][0]) % window_us
    edges = np.arange(t0, int(ev["t"][-1]) + window_us + 1, window_us)
    cuts = np.searchsorted(ev["t"], edges)
    windows = [ev[a:b] for a, b in pairwise(cuts) if b - a >= min_events]
    if not windows:
        raise ParityError(f"{path}: no {window_us} µs window holds {min_events} events")
    if len(windows) > max_windows:
        pick = np.linspace(0, len(windows) - 1, max_windows).round().astype(int)
        windows = [windows[i] for i in pick]
    return windows, chunk.geometry
