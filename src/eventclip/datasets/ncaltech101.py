"""N-Caltech101 (Orchard et al. 2015): ``ROOT[/Caltech101]/<class>/image_0001.bin``, the ATIS recordings
cropped to 240x180 px.

For evaluation there is no official split: a per-class shuffle with seed 0 puts 20 % of each class
in ``test``; ``BACKGROUND_Google`` is not an object class and is left out (the usual 101 classes).
For training, each recording pairs with its Caltech101 image
(``101_ObjectCategories/<class>/image_0001.jpg``).
"""

from __future__ import annotations

from pathlib import Path

from eventclip.datasets.base import (
    EvalDataset,
    Item,
    PairedDataset,
    class_dirs,
    first_existing,
    pair_folders,
    sorted_files,
    split_shuffled,
)
from eventclip.events import Geometry

NCALTECH_TEXT = {"Faces_easy": "face", "Leopards": "leopard", "Motorbikes": "motorbike", "airplanes": "airplane",
                 "BACKGROUND_Google": "background"}
"""Caltech101 folder names whose plain reading is not the object's name."""
NCALTECH_GEOMETRY = Geometry(240, 180)
"""The crop of the ATIS sensor the release holds, in pixels."""


def class_text(folder: str) -> str:
    """The text the text tower reads for a Caltech101 class folder."""
    return NCALTECH_TEXT.get(folder, folder.replace("_", " ").lower())


def load_ncaltech101(root: str | Path, test_fraction: float = 0.2, seed: int = 0) -> EvalDataset:
    """N-Caltech101 (see the module docstring); geometry 240x180, the ATIS crop of the release."""
    base = first_existing(Path(root), "Caltech101")
    dirs = class_dirs(base, "N-Caltech101", exclude=("BACKGROUND_Google",))
    files = [sorted_files(d, "*.bin") for d in dirs]
    train, test = split_shuffled(files, test_fraction, seed)
    names = [d.name for d in dirs]
    texts = [class_text(n) for n in names]
    return EvalDataset("ncaltech101", base, names, texts, train, test, NCALTECH_GEOMETRY,
                       notes={"split": f"per-class shuffle (seed {seed}), {test_fraction:.0%} test; "
                                       "BACKGROUND_Google excluded"})


def load_ncaltech101_pairs(events_root: str | Path, images_root: str | Path) -> PairedDataset:
    """N-Caltech101 (``Caltech101/<class>/image_0001.bin``, as Orchard et al. distribute it) paired with
    Caltech101 (``101_ObjectCategories/<class>/image_0001.jpg``). ``Faces_easy`` pairs with ``Faces_easy``
    (or ``Faces`` when only that exists). Geometry is the ATIS crop, 240×180 px."""
    events_root, images_root = Path(events_root), Path(images_root)
    remap = {"Faces_easy": "Faces"} if not (images_root / "Faces_easy").is_dir() else {}
    classes, pairs = pair_folders(events_root, images_root, ".bin", remap)
    index = {c: i for i, c in enumerate(classes)}
    texts = [class_text(c) for c in classes]
    items = [Item(ev, img, index[c]) for ev, img, c in pairs]
    return PairedDataset(events_root, classes, texts, items, NCALTECH_GEOMETRY)
