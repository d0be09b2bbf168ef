"""N-ImageNet (Kim et al. 2021): ``ROOT/extracted_train/<wnid>/*.npz`` and ``ROOT/extracted_val/<wnid>/*.npz``,
recorded with a Prophesee Gen3 sensor (640x480 px; the geometry is the ``nimagenet_npz`` format's,
:mod:`eventclip.io.datasets`).

When ``ROOT/train_list.txt`` / ``ROOT/val_list.txt`` exist (the authors' file lists, one path per line)
they decide the members, matched by their last two path parts ``<wnid>/<file>.npz``. Class texts come
from ImageNet's ``LOC_synset_mapping.txt`` in ROOT when present. Protocol ``paper`` (Jeong et al.):
100 classes drawn with a fixed seed, 20 of them held out; zero-shot is scored on the held-out
classes' validation samples against those 20 names, each sample a random 30,000-event slice (seeded
per sample, so results repeat). For training, each recording pairs with its ImageNet image
(``train/<wnid>/<stem>.JPEG``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventclip.datasets.base import (
    EvalDataset,
    EventSlice,
    Item,
    PairedDataset,
    Sample,
    class_dirs,
    pair_folders,
    sorted_files,
)
from eventclip.errors import ConfigError
from eventclip.io.datasets import NIMAGENET_GEOMETRY

NIMAGENET_PAPER = {"n_classes": 100, "held_out": 20, "n_events": 30_000, "seed": 0}
"""The paper's N-ImageNet zero-shot protocol (Jeong et al.): class count, held-out classes, events
per sample, seed of the class draw and of the per-sample slices."""


def read_synset_mapping(path: Path) -> dict[str, str]:
    """ImageNet's ``LOC_synset_mapping.txt`` (``n01440764 tench, Tinca tinca``): wnid -> first name."""
    names: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the synset mapping ({exc})") from exc
    for line_no, line in enumerate(lines, start=1):
        wnid, _, rest = line.strip().partition(" ")
        if line.strip() and not rest:
            raise ConfigError(f"{path} line {line_no}: expected '<wnid> <name>[, <synonym>...]'")
        if rest:
            names[wnid] = rest.split(",")[0].strip()
    return names


def _nimagenet_split(root: Path, folder: str, listing: str) -> dict[str, list[Path]]:
    base = root / folder
    dirs = class_dirs(base, f"N-ImageNet {folder}")
    by_class = {d.name: sorted_files(d, "*.npz") for d in dirs}
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
    mapping = root / "LOC_synset_mapping.txt"
    names = read_synset_mapping(mapping) if mapping.is_file() else {}
    index = {w: i for i, w in enumerate(wnids)}
    train = [Sample(p, index[w]) for w, ps in train_by.items() for p in ps]
    test = [Sample(p, index[w]) for w, ps in val_by.items() for p in ps]
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


def load_nimagenet_pairs(events_root: str | Path, images_root: str | Path, synset_mapping: str | Path | None = None
                   ) -> PairedDataset:
    """N-ImageNet (``extracted_train/<wnid>/<stem>.npz``, Kim et al.) paired with ImageNet
    (``train/<wnid>/<stem>.JPEG``). ``synset_mapping`` is ImageNet's ``LOC_synset_mapping.txt``
    (``n01440764 tench, Tinca tinca``); the first name becomes the class text, else the wnid."""
    events_root, images_root = Path(events_root), Path(images_root)
    classes, pairs = pair_folders(events_root, images_root, ".npz")
    names = read_synset_mapping(Path(synset_mapping)) if synset_mapping is not None else {}
    index = {c: i for i, c in enumerate(classes)}
    items = [Item(ev, img, index[c]) for ev, img, c in pairs]
    return PairedDataset(events_root, classes, [names.get(c, c) for c in classes], items, NIMAGENET_GEOMETRY)
