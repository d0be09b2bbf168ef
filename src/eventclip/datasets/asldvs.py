"""ASL-DVS (Bi et al. 2019): ``ROOT/<letter>/<letter>_<n>.mat``, MATLAB files with ``x``, ``y``, ``ts``
(µs) and ``pol``, from a DAVIS240C (240x180 px); y counted from the bottom, flipped to eventclip's
top-row origin as tonic does. Read with scipy. No official split: per-class shuffle with seed 0,
20 % to ``test``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventclip._optional import require
from eventclip.datasets.base import DAVIS240_GEOMETRY, EvalDataset, class_dirs, sorted_files, split_shuffled
from eventclip.errors import ConfigError
from eventclip.events import EVENT_DTYPE
from eventclip.io.errors import EventFormatError

ASL_LETTERS = tuple("abcdefghiklmnopqrstuvwxy")
"""ASL-DVS has 24 static letters: J and Z need motion and are not in the set."""


def read_asl_mat(path: Path) -> np.ndarray:
    """One ASL-DVS sample: MATLAB arrays ``x``, ``y`` (from the bottom row), ``ts`` (µs) and ``pol`` ->
    events sorted by time, y from the top row."""
    sio = require("scipy.io", "eval", "reading ASL-DVS .mat files")
    try:
        mat = sio.loadmat(str(path))
    except (ValueError, OSError, TypeError) as exc:
        raise EventFormatError(f"not a readable MATLAB file ({exc})", path, 0) from exc
    missing = [k for k in ("x", "y", "ts", "pol") if k not in mat]
    if missing:
        raise EventFormatError(f"MATLAB file lacks variables {missing}; ASL-DVS stores x, y, ts, pol", path, 0)
    cols = {k: np.asarray(mat[k]).ravel() for k in ("x", "y", "ts", "pol")}
    if len({len(v) for v in cols.values()}) != 1:
        raise EventFormatError(f"x, y, ts, pol have different lengths {[len(v) for v in cols.values()]}", path, 0)
    x, y = cols["x"].astype(np.int64), cols["y"].astype(np.int64)
    bad = (x < 0) | (y < 0) | (x >= DAVIS240_GEOMETRY.width) | (y >= DAVIS240_GEOMETRY.height)
    if bad.any():
        i = int(np.argmax(bad))
        raise EventFormatError(f"event {i} at (x={int(x[i])}, y={int(y[i])}) lies outside the DAVIS240 sensor "
                               f"{DAVIS240_GEOMETRY}", path, 0)
    events = np.empty(len(x), dtype=EVENT_DTYPE)
    # The files count y from the bottom row; eventclip's y = 0 is the top row (tonic flips it the same way).
    events["x"], events["y"], events["t"] = x, DAVIS240_GEOMETRY.height - 1 - y, cols["ts"]
    events["p"] = cols["pol"] > 0
    return events[np.argsort(events["t"], kind="stable")]


def load_asldvs(root: str | Path, test_fraction: float = 0.2, seed: int = 0) -> EvalDataset:
    """ASL-DVS (.mat per sample, 24 letters); per-class shuffle, 20 % test."""
    root = Path(root)
    dirs = {d.name.lower(): d for d in class_dirs(root, "ASL-DVS")}
    bad = sorted(set(dirs) - set(ASL_LETTERS))
    if bad:
        raise ConfigError(f"{root}: unexpected folders {bad}; ASL-DVS has one folder per letter {''.join(ASL_LETTERS)}")
    letters = [c for c in ASL_LETTERS if c in dirs]
    train, test = split_shuffled([sorted_files(dirs[c], "*.mat") for c in letters], test_fraction, seed)
    texts = [f"the sign language letter {c.upper()}" for c in letters]
    return EvalDataset("asldvs", root, letters, texts, train, test, DAVIS240_GEOMETRY,
                       notes={"split": f"per-class shuffle (seed {seed}), {test_fraction:.0%} test"})
