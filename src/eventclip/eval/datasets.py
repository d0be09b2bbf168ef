"""Evaluation datasets read as their authors distribute them, with their standard splits.

Every loader returns an :class:`EvalDataset`: class names, the texts the text tower reads, and
``train`` / ``test`` lists of :class:`Sample` (a file, a label and, for DVS128 Gesture, the time
span of the gesture inside the file). Events are decoded only when a sample is embedded
(:func:`read_sample`), through :mod:`eventclip.io`, so every format check of the readers applies.

Layouts (``ROOT`` is what the user passes as ``--root``):

* ``ncaltech101``: ``ROOT[/Caltech101]/<class>/image_0001.bin`` (Orchard et al. 2015). No official
  split: a per-class shuffle with seed 0 puts 20 % of each class in ``test``. ``BACKGROUND_Google``
  is not an object class and is left out (the usual 101 classes).
* ``nmnist``: ``ROOT/Train/<digit>/*.bin`` and ``ROOT/Test/<digit>/*.bin``: the official split.
* ``nimagenet``: ``ROOT/extracted_train/<wnid>/*.npz`` and ``ROOT/extracted_val/<wnid>/*.npz``
  (Kim et al. 2021); when ``ROOT/train_list.txt`` / ``ROOT/val_list.txt`` exist (the authors'
  file lists, one path per line) they decide the members, matched by their last two path parts
  ``<wnid>/<file>.npz``. Class texts come from ImageNet's ``LOC_synset_mapping.txt`` in ROOT when
  present. Protocol ``paper`` (Jeong et al.): 100 classes drawn with a fixed seed, 20 of them held
  out; zero-shot is scored on the held-out classes' validation samples against those 20 names,
  each sample a random 30,000-event slice (seeded per sample, so results repeat).
* ``cifar10dvs``: ``ROOT[/CIFAR10DVS]/<class>/cifar10_<class>_<n>.aedat`` (Li et al. 2017; jAER
  AEDAT 2.0 from a DVS128), or the ``.aedat4`` re-release tonic downloads. No official split: the
  usual one by number, first 90 % of each class (by ``n``) to ``train``, the last 10 % to ``test``.
* ``asldvs``: ``ROOT/<letter>/<letter>_<n>.mat`` (Bi et al. 2019; MATLAB files with ``x``, ``y``,
  ``ts`` in µs and ``pol``; DAVIS240C, 240x180; y counted from the bottom, flipped to eventclip's
  top-row origin as tonic does). Read with scipy. No official split: per-class
  shuffle with seed 0, 20 % to ``test``.
* ``dvsgesture``: ``ROOT[/DvsGesture]/userNN_<lighting>.aedat`` (AEDAT 3.1) with
  ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes 1-11) and the
  official ``trials_to_train.txt`` / ``trials_to_test.txt``. Each labelled span is one sample.
* ``folder``: the generic paired layout of :mod:`eventclip.train.data` (what ``eventclip dataset
  synth`` writes): ``classes.json`` + ``index.csv``. Split: the trainer's own (seed 0, one sample
  of each class held out), so seen-class numbers are on samples the model never trained on.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.events import EVENT_DTYPE, Geometry, as_events

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DVSGESTURE_CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                      "right arm counter clockwise", "left arm clockwise", "left arm counter clockwise",
                      "arm roll", "air drums", "air guitar", "other gesture")
"""DVS128 Gesture class ids 1-11 (``gesture_mapping.csv`` of the release), in order."""
ASL_LETTERS = tuple("abcdefghiklmnopqrstuvwxy")
"""ASL-DVS has 24 static letters: J and Z need motion and are not in the set."""
DVS128_GEOMETRY = Geometry(128, 128)
DAVIS240_GEOMETRY = Geometry(240, 180)
NMNIST_GEOMETRY = Geometry(34, 34)
NIMAGENET_PAPER = {"n_classes": 100, "held_out": 20, "n_events": 30_000, "seed": 0}
"""The paper's N-ImageNet zero-shot protocol (Jeong et al.): class count, held-out classes, events
per sample, seed of the class draw and of the per-sample slices."""


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
            from eventclip.train.data import time_window

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


def _read_file(path: Path, geometry: Geometry | None) -> tuple[np.ndarray, Geometry]:
    if path.suffix.lower() == ".mat":
        return read_asl_mat(path), geometry or DAVIS240_GEOMETRY
    from eventclip.io import read_events

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


def read_asl_mat(path: Path) -> np.ndarray:
    """One ASL-DVS sample: MATLAB arrays ``x``, ``y`` (from the bottom row), ``ts`` (µs) and ``pol`` ->
    events sorted by time, y from the top row."""
    from eventclip._optional import require
    from eventclip.io.errors import EventFormatError

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


# -- helpers -------------------------------------------------------------------------------------

def _class_dirs(root: Path, what: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"{root}: the {what} folder does not exist; check --root")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in exclude and not p.name.startswith("."))
    if not dirs:
        raise ConfigError(f"{root}: no class folders found; {what} is laid out as <class>/<sample files>")
    return dirs


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def _split_shuffled(per_class: list[list[Path]], test_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Per class: shuffle with ``seed`` and put round(test_fraction * n) (at least 1 if n > 1) in test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, files in enumerate(per_class):
        order = rng.permutation(len(files))
        n_test = max(1, round(test_fraction * len(files))) if len(files) > 1 else 0
        test += [Sample(files[i], label) for i in order[:n_test]]
        train += [Sample(files[i], label) for i in order[n_test:]]
    return train, test


def _first_existing(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return root


# -- loaders -------------------------------------------------------------------------------------

def load_ncaltech101(root: str | Path, test_fraction: float = 0.2, seed: int = 0) -> EvalDataset:
    """N-Caltech101 (see the module docstring); geometry 240x180, the ATIS crop of the release."""
    from eventclip.train.data import NCALTECH_GEOMETRY, NCALTECH_TEXT

    base = _first_existing(Path(root), "Caltech101")
    dirs = _class_dirs(base, "N-Caltech101", exclude=("BACKGROUND_Google",))
    files = [_files(d, "*.bin") for d in dirs]
    train, test = _split_shuffled(files, test_fraction, seed)
    names = [d.name for d in dirs]
    texts = [NCALTECH_TEXT.get(n, n.replace("_", " ").lower()) for n in names]
    return EvalDataset("ncaltech101", base, names, texts, train, test, NCALTECH_GEOMETRY,
                       notes={"split": f"per-class shuffle (seed {seed}), {test_fraction:.0%} test; "
                                       "BACKGROUND_Google excluded"})


def load_nmnist(root: str | Path) -> EvalDataset:
    """N-MNIST with the official Train / Test folders; 34x34 pixels."""
    from eventclip.train.synth import DIGIT_WORDS

    root = Path(root)
    splits = {}
    for split in ("Train", "Test"):
        dirs = {d.name: d for d in _class_dirs(root / split, f"N-MNIST {split}")}
        bad = sorted(set(dirs) - {str(i) for i in range(10)})
        if bad:
            raise ConfigError(f"{root / split}: unexpected folders {bad}; N-MNIST has one folder per digit 0-9")
        splits[split] = [Sample(f, int(name)) for name, d in sorted(dirs.items()) for f in _files(d, "*.bin")]
    classes = [str(i) for i in range(10)]
    texts = [f"the handwritten digit {w}" for w in DIGIT_WORDS]
    return EvalDataset("nmnist", root, classes, texts, splits["Train"], splits["Test"], NMNIST_GEOMETRY,
                       notes={"split": "official Train / Test folders"})


def _nimagenet_split(root: Path, folder: str, listing: str) -> dict[str, list[Path]]:
    base = root / folder
    dirs = _class_dirs(base, f"N-ImageNet {folder}")
    by_class = {d.name: _files(d, "*.npz") for d in dirs}
    list_path = root / listing
    if list_path.is_file():
        wanted: dict[str, list[Path]] = {}
        for line_no, line in enumerate(list_path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = Path(line.strip()).parts
            if len(parts) < 2:
                raise ConfigError(f"{list_path} line {line_no}: expected a path ending in <wnid>/<file>.npz")
            path = base / parts[-2] / parts[-1]
            if not path.is_file():
                raise ConfigError(f"{list_path} line {line_no}: {path} does not exist; the list and {base} disagree")
            wanted.setdefault(parts[-2], []).append(path)
        return {k: sorted(v) for k, v in sorted(wanted.items())}
    return by_class


def load_nimagenet(root: str | Path, protocol: str = "standard") -> EvalDataset:
    """N-ImageNet with its train / val split; ``protocol='paper'`` is the named zero-shot protocol."""
    root = Path(root)
    train_by = _nimagenet_split(root, "extracted_train", "train_list.txt")
    val_by = _nimagenet_split(root, "extracted_val", "val_list.txt")
    wnids = sorted(set(train_by) | set(val_by))
    names: dict[str, str] = {}
    mapping = root / "LOC_synset_mapping.txt"
    if mapping.is_file():
        for line_no, line in enumerate(mapping.read_text().splitlines(), start=1):
            wnid, _, rest = line.strip().partition(" ")
            if line.strip() and not rest:
                raise ConfigError(f"{mapping} line {line_no}: expected '<wnid> <name>[, <synonym>...]'")
            if rest:
                names[wnid] = rest.split(",")[0].strip()
    index = {w: i for i, w in enumerate(wnids)}
    train = [Sample(p, index[w]) for w, ps in train_by.items() for p in ps]
    test = [Sample(p, index[w]) for w, ps in val_by.items() for p in ps]
    from eventclip.io.datasets import NIMAGENET_GEOMETRY

    ds = EvalDataset("nimagenet", root, wnids, [names.get(w, w) for w in wnids], train, test, NIMAGENET_GEOMETRY,
                     notes={"split": "extracted_train / extracted_val"
                                     + (" (authors' file lists)" if (root / "val_list.txt").is_file() else "")})
    if protocol == "standard":
        return ds
    if protocol != "paper":
        raise ConfigError(f"--protocol {protocol!r} is not an N-ImageNet protocol; use 'standard' or 'paper'")
    p = NIMAGENET_PAPER
    if len(wnids) < p["n_classes"]:
        raise ConfigError(f"{root}: the paper protocol draws {p['n_classes']} classes "
                          f"but only {len(wnids)} are present")
    rng = np.random.default_rng(p["seed"])
    chosen = sorted(rng.choice(len(wnids), p["n_classes"], replace=False).tolist())
    held_out = sorted(rng.choice(chosen, p["held_out"], replace=False).tolist())
    ds = ds.restrict(chosen, f"paper protocol: {p['n_classes']} classes drawn with seed {p['seed']}")
    local = {c: i for i, c in enumerate(chosen)}
    ds.candidates = [local[c] for c in held_out]
    ds.slice = EventSlice(n_events=p["n_events"], seed=p["seed"])
    ds.notes["protocol"] = {"name": "paper", **p, "held_out_classes": [wnids[c] for c in held_out],
                            "note": "zero-shot scores the held-out classes' val samples among the held-out names"}
    return ds


def load_cifar10dvs(root: str | Path, train_fraction: float = 0.9) -> EvalDataset:
    """CIFAR10-DVS (jAER AEDAT 2.0 ``.aedat``, or the AEDAT 4 ``.aedat4`` re-release that tonic downloads;
    DVS128); split by sample number, first 90 % of each class to train."""
    root = _first_existing(Path(root), "CIFAR10DVS")
    train, test = [], []
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"{folder}: missing; CIFAR10-DVS has one folder per class: "
                              f"{', '.join(CIFAR10DVS_CLASSES)}")
        def number(p: Path) -> int:
            m = re.search(r"(\d+)$", p.stem)
            return int(m.group(1)) if m else -1
        files = sorted(_files(folder, "*.aedat") + _files(folder, "*.aedat4"), key=lambda p: (number(p), p.name))
        n_train = min(int(round(train_fraction * len(files))), len(files) - 1) if len(files) > 1 else len(files)
        train += [Sample(f, label) for f in files[:n_train]]
        test += [Sample(f, label) for f in files[n_train:]]
    return EvalDataset("cifar10dvs", root, list(CIFAR10DVS_CLASSES), list(CIFAR10DVS_CLASSES), train, test,
                       DVS128_GEOMETRY, notes={"split": f"by sample number: first {train_fraction:.0%} train"})


def load_asldvs(root: str | Path, test_fraction: float = 0.2, seed: int = 0) -> EvalDataset:
    """ASL-DVS (.mat per sample, 24 letters); per-class shuffle, 20 % test."""
    root = Path(root)
    dirs = {d.name.lower(): d for d in _class_dirs(root, "ASL-DVS")}
    bad = sorted(set(dirs) - set(ASL_LETTERS))
    if bad:
        raise ConfigError(f"{root}: unexpected folders {bad}; ASL-DVS has one folder per letter {''.join(ASL_LETTERS)}")
    letters = [c for c in ASL_LETTERS if c in dirs]
    train, test = _split_shuffled([_files(dirs[c], "*.mat") for c in letters], test_fraction, seed)
    texts = [f"the sign language letter {c.upper()}" for c in letters]
    return EvalDataset("asldvs", root, letters, texts, train, test, DAVIS240_GEOMETRY,
                       notes={"split": f"per-class shuffle (seed {seed}), {test_fraction:.0%} test"})


def _gesture_samples(base: Path, listing: Path) -> list[Sample]:
    if not listing.is_file():
        raise ConfigError(f"{listing}: missing; DVS128 Gesture ships trials_to_train.txt and trials_to_test.txt")
    samples = []
    for name in (ln.strip() for ln in listing.read_text().splitlines()):
        if not name:
            continue
        rec = base / name
        labels = rec.with_name(rec.stem + "_labels.csv")
        for p in (rec, labels):
            if not p.is_file():
                raise ConfigError(f"{p}: listed in {listing.name} but missing")
        with open(labels, newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"class", "startTime_usec", "endTime_usec"}
            if not need <= set(reader.fieldnames or []):
                raise ConfigError(f"{labels}: header must hold {sorted(need)}, got {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                try:
                    cls, t0, t1 = int(row["class"]), int(row["startTime_usec"]), int(row["endTime_usec"])
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{labels} line {line}: expected integers ({exc})") from exc
                if not 1 <= cls <= len(DVSGESTURE_CLASSES) or t1 <= t0:
                    raise ConfigError(f"{labels} line {line}: class must be 1-{len(DVSGESTURE_CLASSES)} and "
                                      f"endTime_usec > startTime_usec; got {cls}, {t0}, {t1}")
                samples.append(Sample(rec, cls - 1, t0, t1))
    return samples


def load_dvsgesture(root: str | Path) -> EvalDataset:
    """DVS128 Gesture: one sample per labelled span; official trials_to_train / trials_to_test split."""
    base = _first_existing(Path(root), "DvsGesture")
    train = _gesture_samples(base, base / "trials_to_train.txt")
    test = _gesture_samples(base, base / "trials_to_test.txt")
    return EvalDataset("dvsgesture", base, [c.replace(" ", "_") for c in DVSGESTURE_CLASSES],
                       list(DVSGESTURE_CLASSES), train, test, DVS128_GEOMETRY,
                       notes={"split": "official trials_to_train.txt / trials_to_test.txt"})


def load_folder_dataset(root: str | Path, held_out_files: Sequence[str] | None = None, val_per_class: int = 1,
                        seed: int = 0) -> EvalDataset:
    """The generic paired folder (``eventclip dataset synth``), split as the model was trained.

    ``held_out_files`` (event paths relative to ``root``, as the trainer records them in the model
    card under ``training.split``) are the test samples and every other recording is train, so no
    test recording was trained on. Without them (a card from before the trainer recorded its split,
    or a dataset the model was not trained on) the split is drawn anew and ``notes`` say that it may
    overlap the model's training data.
    """
    from eventclip.train.data import load_folder, split_items

    ds = load_folder(root)
    conv = lambda items: [Sample(it.events, it.label, image=it.image) for it in items]  # noqa: E731
    if held_out_files is None:
        train_items, test_items = split_items(ds.items, val_per_class, seed)
        note = (f"{val_per_class} sample(s) per class held out (seed {seed}), drawn here: the model card records "
                "no held-out files, so test samples may have been used in training")
    else:
        wanted = set(held_out_files)
        rel = {it: it.events.relative_to(ds.root).as_posix() for it in ds.items}
        missing = sorted(wanted - set(rel.values()))
        if missing:
            raise ConfigError(f"{Path(root) / 'index.csv'}: lacks {len(missing)} of the model card's held-out "
                              f"recordings (first: {missing[0]}); --root is not the dataset this model was trained "
                              "on (its card names it under training.split.dataset)")
        test_items = [it for it in ds.items if rel[it] in wanted]
        train_items = [it for it in ds.items if rel[it] not in wanted]
        note = (f"the trainer's split from the model card: its {len(test_items)} held-out recordings are the test "
                "split, none of them trained on")
    return EvalDataset("folder", Path(root), ds.classes, ds.texts, conv(train_items), conv(test_items), ds.geometry,
                       notes={"split": note})


LOADERS: dict[str, Callable[..., EvalDataset]] = {
    "ncaltech101": load_ncaltech101,
    "nmnist": load_nmnist,
    "nimagenet": load_nimagenet,
    "cifar10dvs": load_cifar10dvs,
    "asldvs": load_asldvs,
    "dvsgesture": load_dvsgesture,
    "folder": load_folder_dataset,
}


def load_dataset(name: str, root: str | Path, *, protocol: str = "standard",
                 held_out_files: Sequence[str] | None = None) -> EvalDataset:
    """The loader for ``name`` applied to ``root``; ``protocol`` only means something for N-ImageNet,
    ``held_out_files`` (the trainer's record in a model card) only for ``folder``."""
    if name not in LOADERS:
        raise ConfigError(f"--dataset {name!r} is unknown; choose one of {', '.join(LOADERS)}")
    if protocol != "standard" and name != "nimagenet":
        raise ConfigError(f"--protocol {protocol!r} exists only for nimagenet")
    if name == "nimagenet":
        ds = LOADERS[name](root, protocol=protocol)
    elif name == "folder":
        ds = load_folder_dataset(root, held_out_files)
    else:
        ds = LOADERS[name](root)
    if not ds.train and not ds.test:
        raise ConfigError(f"{ds.root}: found no samples for {name}; check --root and the layout (docs/evaluation.md)")
    return ds
