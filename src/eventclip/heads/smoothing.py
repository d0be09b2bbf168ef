"""Temporal smoothing of a score stream (the anomaly score over windows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventclip.errors import ConfigError


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
