"""Decoding one sample's events, through :mod:`eventclip.io` (every reader's format checks apply) or,
for ASL-DVS, its MATLAB files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventclip.datasets.asldvs import read_asl_mat
from eventclip.datasets.base import DAVIS240_GEOMETRY, Sample
from eventclip.events import Geometry, as_events
from eventclip.io import read_events


def _read_file(path: Path, geometry: Geometry | None) -> tuple[np.ndarray, Geometry]:
    if path.suffix.lower() == ".mat":
        return read_asl_mat(path), geometry or DAVIS240_GEOMETRY
    chunk = read_events(path, geometry=geometry)
    return as_events(chunk.events), chunk.geometry


def _cut(events: np.ndarray, sample: Sample) -> np.ndarray:
    if sample.t_start_us is None:
        return events
    lo, hi = np.searchsorted(events["t"], [sample.t_start_us, sample.t_end_us])
    return events[lo:hi]


def read_sample(sample: Sample, geometry: Geometry | None) -> tuple[np.ndarray, Geometry]:
    """Decode one sample's events (EVENT_DTYPE) and the sensor geometry; the span, if any, is cut out."""
    events, geometry = _read_file(sample.path, geometry)
    return _cut(events, sample), geometry


class SampleReader:
    """:func:`read_sample` that keeps the last decoded file, so the labelled spans of one recording
    (DVS128 Gesture: about a dozen per file) decode it once when read in order."""

    def __init__(self, geometry: Geometry | None) -> None:
        self.geometry = geometry
        self._path: Path | None = None
        self._decoded: tuple[np.ndarray, Geometry] | None = None

    def __call__(self, sample: Sample) -> tuple[np.ndarray, Geometry]:
        if sample.path != self._path or self._decoded is None:
            self._decoded = _read_file(sample.path, self.geometry)
            self._path = sample.path
        events, geometry = self._decoded
        return _cut(events, sample), geometry
