"""What every dataset loader returns, the splits they share, and the sensors their files come from.

Two shapes, because training and evaluation need different things of one recording:

* :class:`PairedDataset` of :class:`Item` (an event file paired with its image and a label): what the
  trainer's contrastive stages read (f_E sees the events, frozen f_I the image).
* :class:`EvalDataset` of :class:`Sample` (an event file, a label, optionally a time span in it): what
  the evaluation protocols and retrieval read, with the dataset's standard train / test split.

Each dataset's file (``ncaltech101.py``, ``nimagenet.py``, ...) builds one or both from the layout its
authors distribute.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.events import Geometry

PROMPT_TEMPLATES = ("a picture of a {}.", "an event camera recording of a {}.")
"""Templates averaged (CLIP's prompt ensemble) into one text embedding per class: the trainer's, and
the ones evaluation and retrieval wrap class texts in to score a model as it was trained."""
DVS128_GEOMETRY = Geometry(128, 128)
"""The DVS128 (CIFAR10-DVS, DVS128 Gesture), in pixels."""
DAVIS240_GEOMETRY = Geometry(240, 180)
"""The DAVIS240C (ASL-DVS), in pixels."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")


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


@dataclass(frozen=True)
class Sample:
    """One labelled sample: a file, a class index, optionally a span [t_start_us, t_end_us) in it and
    the paired image (folder datasets), which retrieval uses."""

    path: Path
    label: int
    t_start_us: int | None = None
    t_end_us: int | None = None
    image: Path | None = None

    def key(self) -> int:
        """A stable 32-bit id from the class folder, file name and span: seeds this sample's random slice."""
        return zlib.crc32(f"{self.path.parent.name}/{self.path.name}@{self.t_start_us}".encode())


@dataclass(frozen=True)
class EventSlice:
    """Which events of a sample become its one frame: all of them, a window, or a random run.

    ``window_us``: the centred window of that length (µs), as the trainer evaluates. ``n_events``:
    a contiguous run of that many events starting at a random index drawn from ``seed`` and the
    sample's :meth:`Sample.key`, so the same sample always gets the same slice, whatever else is
    evaluated with it.
    """

    window_us: int | None = None
    n_events: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.window_us is not None and self.n_events is not None:
            raise ConfigError("give --window-us or --n-events, not both")
        for name in ("window_us", "n_events"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {value}")

    def __call__(self, events: np.ndarray, key: int) -> np.ndarray:
        if self.window_us is not None:
            return time_window(events, self.window_us, None)
        if self.n_events is not None and len(events) > self.n_events:
            start = int(np.random.default_rng([self.seed, key]).integers(0, len(events) - self.n_events + 1))
            return events[start:start + self.n_events]
        return events

    def describe(self) -> str:
        if self.window_us is not None:
            return f"centred {self.window_us} µs window"
        if self.n_events is not None:
            return f"random {self.n_events}-event slice (seed {self.seed})"
        return "all events of the sample"


@dataclass
class EvalDataset:
    """A dataset ready for a protocol. ``candidates``: class indices a zero-shot prediction picks from
    (all by default); ``notes`` say how the split and protocol were made (copied into the report)."""

    name: str
    root: Path
    classes: list[str]
    texts: list[str]
    train: list[Sample]
    test: list[Sample]
    geometry: Geometry | None = None
    slice: EventSlice = field(default_factory=EventSlice)
    candidates: list[int] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def restrict(self, keep: list[int], why: str) -> EvalDataset:
        """The same dataset with only the classes in ``keep`` (indices), relabelled 0..len(keep)-1."""
        new = {old: i for i, old in enumerate(keep)}
        def sub(samples: list[Sample]) -> list[Sample]:
            return [Sample(s.path, new[s.label], s.t_start_us, s.t_end_us, s.image) for s in samples if s.label in new]
        cands = None if self.candidates is None else [new[c] for c in self.candidates if c in new]
        return EvalDataset(self.name, self.root, [self.classes[i] for i in keep], [self.texts[i] for i in keep],
                           sub(self.train), sub(self.test), self.geometry, self.slice, cands,
                           {**self.notes, "classes": why})


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


# -- helpers the loaders share -----------------------------------------------------------------

def class_dirs(root: Path, what: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"{root}: the {what} folder does not exist; check --root")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in exclude and not p.name.startswith("."))
    if not dirs:
        raise ConfigError(f"{root}: no class folders found; {what} is laid out as <class>/<sample files>")
    return dirs


def sorted_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def split_shuffled(per_class: list[list[Path]], test_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Per class: shuffle with ``seed`` and put round(test_fraction * n) (at least 1 if n > 1) in test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, files in enumerate(per_class):
        order = rng.permutation(len(files))
        n_test = max(1, round(test_fraction * len(files))) if len(files) > 1 else 0
        test += [Sample(files[i], label) for i in order[:n_test]]
        train += [Sample(files[i], label) for i in order[n_test:]]
    return train, test


def first_existing(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return root


def pair_folders(events_root: Path, images_root: Path, event_suffix: str, folder_of_image: dict[str, str] | None = None
          ) -> tuple[list[str], list[tuple[Path, Path, str]]]:
    """Match ``events_root/<class>/<stem><event_suffix>`` with ``images_root/<class>/<stem>.<image ext>``."""
    for root, what in ((events_root, "event"), (images_root, "image")):
        if not root.is_dir():
            raise ConfigError(f"{root}: the {what} folder does not exist")
    classes = sorted(p.name for p in events_root.iterdir() if p.is_dir())
    if not classes:
        raise ConfigError(f"{events_root}: no class folders found (expected <class>/<file>{event_suffix})")
    pairs, missing = [], []
    for cls in classes:
        img_dir = images_root / (folder_of_image or {}).get(cls, cls)
        for ev in sorted((events_root / cls).glob(f"*{event_suffix}")):
            img = next((img_dir / f"{ev.stem}{s}" for s in IMAGE_SUFFIXES
                        if (img_dir / f"{ev.stem}{s}").is_file()), None)
            if img is None:
                missing.append(str(ev))
            else:
                pairs.append((ev, img, cls))
    if missing:
        raise ConfigError(f"{len(missing)} event files have no paired image under {images_root} "
                          f"(first: {missing[0]}); pairs must share class folder and file stem")
    return classes, pairs
