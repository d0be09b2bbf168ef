"""The generic paired folder: any dataset laid out so trains and evaluates.

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
from collections.abc import Sequence
from pathlib import Path

from eventclip.datasets.base import EvalDataset, Item, PairedDataset, Sample, split_items
from eventclip.errors import ConfigError
from eventclip.events import Geometry


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


def load_folder_dataset(root: str | Path, held_out_files: Sequence[str] | None = None, val_per_class: int = 1,
                        seed: int = 0) -> EvalDataset:
    """The generic paired folder (``eventclip dataset synth``), split as the model was trained.

    ``held_out_files`` (event paths relative to ``root``, as the trainer records them in the model
    card under ``training.split``) are the test samples and every other recording is train, so no
    test recording was trained on. Without them (a card from before the trainer recorded its split,
    or a dataset the model was not trained on) the split is drawn anew and ``notes`` say that it may
    overlap the model's training data.
    """
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
