"""Recordings and images decoded once and kept in memory, for the epochs that read them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from eventclip.errors import ConfigError
from eventclip.events import Geometry, as_events
from eventclip.io import read_events


class EventCache:
    """Decoded recordings kept in memory (the benchmark is small); reads each file once."""

    def __init__(self, geometry: Geometry | None = None) -> None:
        self.geometry = geometry
        self._events: dict[Path, tuple[np.ndarray, Geometry]] = {}
        self._images: dict[Path, np.ndarray] = {}

    def events(self, path: Path) -> tuple[np.ndarray, Geometry]:
        if path not in self._events:
            chunk = read_events(path, geometry=self.geometry)
            self._events[path] = (as_events(chunk.events), chunk.geometry)
        return self._events[path]

    def image(self, path: Path) -> np.ndarray:
        if path not in self._images:
            try:
                self._images[path] = np.asarray(Image.open(path).convert("RGB"))
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the paired image ({exc})") from exc
        return self._images[path]
