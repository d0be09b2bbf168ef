"""N-MNIST (Orchard et al. 2015): ``ROOT/Train/<digit>/*.bin`` and ``ROOT/Test/<digit>/*.bin``, the official
split; 34x34 px (the ``nmnist_bin`` format's geometry, :mod:`eventclip.io.datasets`)."""

from __future__ import annotations

from pathlib import Path

from eventclip.datasets.base import EvalDataset, Sample, class_dirs, sorted_files
from eventclip.errors import ConfigError
from eventclip.io.datasets import NMNIST_GEOMETRY

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The digits as words: the class texts ("the handwritten digit three")."""


def load_nmnist(root: str | Path) -> EvalDataset:
    """N-MNIST with the official Train / Test folders; 34x34 pixels."""
    root = Path(root)
    splits = {}
    for split in ("Train", "Test"):
        dirs = {d.name: d for d in class_dirs(root / split, f"N-MNIST {split}")}
        bad = sorted(set(dirs) - {str(i) for i in range(10)})
        if bad:
            raise ConfigError(f"{root / split}: unexpected folders {bad}; N-MNIST has one folder per digit 0-9")
        splits[split] = [Sample(f, int(name)) for name, d in sorted(dirs.items()) for f in sorted_files(d, "*.bin")]
    classes = [str(i) for i in range(10)]
    texts = [f"the handwritten digit {w}" for w in DIGIT_WORDS]
    return EvalDataset("nmnist", root, classes, texts, splits["Train"], splits["Test"], NMNIST_GEOMETRY,
                       notes={"split": "official Train / Test folders"})
