"""Paired (event recording, image, label) datasets and the tensors the trainer feeds the model.

Generic folder layout (what ``eventclip dataset synth`` writes; any dataset can be laid out so)::

    DIR/classes.json   [{"name": "digit_3", "text": "the handwritten digit three", "group": "digit"}, ...]
    DIR/index.csv      events,image,label[,sample]   (paths relative to DIR; label = a class name)
    DIR/meta.json      optional; {"geometry": [width, height]} when the event files do not carry it

Event files are read with :func:`eventclip.io.read_events` (any format eventclip reads), images with
Pillow. Class texts are what the text tower reads; zero-shot prompts wrap them in templates.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventclip.errors import ConfigError
from eventclip.events import Geometry, as_events

PROMPT_TEMPLATES = ("a picture of a {}.", "an event camera recording of a {}.")
"""Templates averaged (CLIP's prompt ensemble) into one text embedding per class."""


@dataclass(frozen=True)
class Item:
    """One paired sample; paths are absolute."""

    events: Path
    image: Path
    label: int


@dataclass
class PairedDataset:
    """A list of items over ``classes`` (index = label) with their texts; plus the sensor geometry if known."""

    root: Path
    classes: list[str]
    texts: list[str]
    items: list[Item]
    geometry: Geometry | None = None

    def subset(self, labels: set[int]) -> list[Item]:
        """Items whose label is in ``labels``."""
        return [it for it in self.items if it.label in labels]


def load_folder(root: str | Path) -> PairedDataset:
    """Read the generic folder layout; errors name the file and row that is wrong."""
    root = Path(root)
    cpath, ipath = root / "classes.json", root / "index.csv"
    for p in (cpath, ipath):
        if not p.is_file():
            raise ConfigError(f"{p}: missing; a paired dataset folder needs classes.json and index.csv "
                              f"(make one with `eventclip dataset synth --out {root}`)")
    try:
        classes = json.loads(cpath.read_text())
        names = [c["name"] for c in classes]
        texts = [c.get("text", c["name"]) for c in classes]
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(f"{cpath}: expected a list of objects with 'name' (and 'text'): {exc}") from exc
    index = {n: i for i, n in enumerate(names)}
    items = []
    with open(ipath, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"events", "image", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{ipath}: header lacks columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            if row["label"] not in index:
                raise ConfigError(f"{ipath} line {line}: label {row['label']!r} is not in classes.json")
            items.append(Item(root / row["events"], root / row["image"], index[row["label"]]))
    geometry = None
    if (root / "meta.json").is_file():
        g = json.loads((root / "meta.json").read_text()).get("geometry")
        geometry = Geometry(*g) if g else None
    return PairedDataset(root, names, texts, items, geometry)


def split_classes(n_classes: int, unseen_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministically split class indices into (seen, unseen); unseen ones never reach f_E in training."""
    if not 0 < unseen_fraction < 1:
        raise ConfigError(f"split.unseen_fraction must be in (0, 1), got {unseen_fraction}")
    perm = np.random.default_rng(seed).permutation(n_classes)
    n_unseen = max(1, int(round(n_classes * unseen_fraction)))
    return sorted(perm[n_unseen:].tolist()), sorted(perm[:n_unseen].tolist())


def split_items(items: list[Item], val_per_class: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Hold out ``val_per_class`` items of every class (deterministic) for seen-class validation."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[Item]] = {}
    for it in items:
        by_class.setdefault(it.label, []).append(it)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label]
        order = rng.permutation(len(group))
        val += [group[i] for i in order[:val_per_class]]
        train += [group[i] for i in order[val_per_class:]]
    return train, val


class EventCache:
    """Decoded recordings kept in memory (the benchmark is small); reads each file once."""

    def __init__(self, geometry: Geometry | None = None) -> None:
        self.geometry = geometry
        self._events: dict[Path, tuple[np.ndarray, Geometry]] = {}
        self._images: dict[Path, np.ndarray] = {}

    def events(self, path: Path) -> tuple[np.ndarray, Geometry]:
        if path not in self._events:
            from eventclip.io import read_events

            chunk = read_events(path, geometry=self.geometry)
            self._events[path] = (as_events(chunk.events), chunk.geometry)
        return self._events[path]

    def image(self, path: Path) -> np.ndarray:
        if path not in self._images:
            from PIL import Image

            try:
                self._images[path] = np.asarray(Image.open(path).convert("RGB"))
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the paired image ({exc})") from exc
        return self._images[path]


def time_window(events: np.ndarray, window_us: int, rng: np.random.Generator | None) -> np.ndarray:
    """A window of ``window_us`` µs: at a random start when ``rng`` is given, else centred."""
    if len(events) == 0:
        return events
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    span = t1 - t0
    if span <= window_us:
        return events
    start = t0 + (int(rng.integers(0, span - window_us + 1)) if rng is not None else (span - window_us) // 2)
    lo, hi = np.searchsorted(events["t"], [start, start + window_us])
    return events[lo:hi]
