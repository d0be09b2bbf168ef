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


NCALTECH_TEXT = {"Faces_easy": "face", "Leopards": "leopard", "Motorbikes": "motorbike", "airplanes": "airplane",
                 "BACKGROUND_Google": "background"}
"""Caltech101 folder names whose plain reading is not the object's name."""
NCALTECH_GEOMETRY = Geometry(240, 180)
NIMAGENET_GEOMETRY = Geometry(640, 480)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")


def _pair(events_root: Path, images_root: Path, event_suffix: str, folder_of_image: dict[str, str] | None = None
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


def load_ncaltech101(events_root: str | Path, images_root: str | Path) -> PairedDataset:
    """N-Caltech101 (``Caltech101/<class>/image_0001.bin``, as Orchard et al. distribute it) paired with
    Caltech101 (``101_ObjectCategories/<class>/image_0001.jpg``). ``Faces_easy`` pairs with ``Faces_easy``
    (or ``Faces`` when only that exists). Geometry is the ATIS crop, 240×180 px."""
    events_root, images_root = Path(events_root), Path(images_root)
    remap = {"Faces_easy": "Faces"} if not (images_root / "Faces_easy").is_dir() else {}
    classes, pairs = _pair(events_root, images_root, ".bin", remap)
    index = {c: i for i, c in enumerate(classes)}
    texts = [NCALTECH_TEXT.get(c, c.replace("_", " ").lower()) for c in classes]
    items = [Item(ev, img, index[c]) for ev, img, c in pairs]
    return PairedDataset(events_root, classes, texts, items, NCALTECH_GEOMETRY)


def load_nimagenet(events_root: str | Path, images_root: str | Path, synset_mapping: str | Path | None = None
                   ) -> PairedDataset:
    """N-ImageNet (``extracted_train/<wnid>/<stem>.npz``, Kim et al.) paired with ImageNet
    (``train/<wnid>/<stem>.JPEG``). ``synset_mapping`` is ImageNet's ``LOC_synset_mapping.txt``
    (``n01440764 tench, Tinca tinca``); the first name becomes the class text, else the wnid."""
    events_root, images_root = Path(events_root), Path(images_root)
    classes, pairs = _pair(events_root, images_root, ".npz")
    names: dict[str, str] = {}
    if synset_mapping is not None:
        path = Path(synset_mapping)
        try:
            for line_no, line in enumerate(path.read_text().splitlines(), start=1):
                if line.strip():
                    wnid, _, rest = line.partition(" ")
                    if not rest:
                        raise ConfigError(f"{path} line {line_no}: expected '<wnid> <name>[, <synonym>...]'")
                    names[wnid] = rest.split(",")[0].strip()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the synset mapping ({exc})") from exc
    index = {c: i for i, c in enumerate(classes)}
    items = [Item(ev, img, index[c]) for ev, img, c in pairs]
    return PairedDataset(events_root, classes, [names.get(c, c) for c in classes], items, NIMAGENET_GEOMETRY)
