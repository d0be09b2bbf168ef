"""DVS128 Gesture (Amir et al. 2017): ``ROOT[/DvsGesture]/userNN_<lighting>.aedat`` (AEDAT 3.1) with
``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes 1-11) and the official
``trials_to_train.txt`` / ``trials_to_test.txt``. Each labelled span is one sample."""

from __future__ import annotations

import csv
from pathlib import Path

from eventclip.datasets.base import DVS128_GEOMETRY, EvalDataset, Sample, first_existing
from eventclip.errors import ConfigError

DVSGESTURE_CLASSES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                      "right arm counter clockwise", "left arm clockwise", "left arm counter clockwise",
                      "arm roll", "air drums", "air guitar", "other gesture")
"""DVS128 Gesture class ids 1-11 (``gesture_mapping.csv`` of the release), in order."""


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
    base = first_existing(Path(root), "DvsGesture")
    train = _gesture_samples(base, base / "trials_to_train.txt")
    test = _gesture_samples(base, base / "trials_to_test.txt")
    return EvalDataset("dvsgesture", base, [c.replace(" ", "_") for c in DVSGESTURE_CLASSES],
                       list(DVSGESTURE_CLASSES), train, test, DVS128_GEOMETRY,
                       notes={"split": "official trials_to_train.txt / trials_to_test.txt"})
