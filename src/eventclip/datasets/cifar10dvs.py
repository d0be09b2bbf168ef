"""CIFAR10-DVS (Li et al. 2017): ``ROOT[/CIFAR10DVS]/<class>/cifar10_<class>_<n>.aedat`` (jAER AEDAT 2.0 from a
DVS128), or the ``.aedat4`` re-release tonic downloads. No official split: the usual one by number,
first 90 % of each class (by ``n``) to ``train``, the last 10 % to ``test``."""

from __future__ import annotations

import re
from pathlib import Path

from eventclip.datasets.base import DVS128_GEOMETRY, EvalDataset, Sample, first_existing, sorted_files
from eventclip.errors import ConfigError

CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10dvs(root: str | Path, train_fraction: float = 0.9) -> EvalDataset:
    """CIFAR10-DVS (jAER AEDAT 2.0 ``.aedat``, or the AEDAT 4 ``.aedat4`` re-release that tonic downloads;
    DVS128); split by sample number, first 90 % of each class to train."""
    root = first_existing(Path(root), "CIFAR10DVS")
    train, test = [], []
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        folder = root / name
        if not folder.is_dir():
            raise ConfigError(f"{folder}: missing; CIFAR10-DVS has one folder per class: "
                              f"{', '.join(CIFAR10DVS_CLASSES)}")
        def number(p: Path) -> int:
            m = re.search(r"(\d+)$", p.stem)
            return int(m.group(1)) if m else -1
        files = sorted(sorted_files(folder, "*.aedat") + sorted_files(folder, "*.aedat4"),
                       key=lambda p: (number(p), p.name))
        n_train = min(int(round(train_fraction * len(files))), len(files) - 1) if len(files) > 1 else len(files)
        train += [Sample(f, label) for f in files[:n_train]]
        test += [Sample(f, label) for f in files[n_train:]]
    return EvalDataset("cifar10dvs", root, list(CIFAR10DVS_CLASSES), list(CIFAR10DVS_CLASSES), train, test,
                       DVS128_GEOMETRY, notes={"split": f"by sample number: first {train_fraction:.0%} train"})
