"""``eventclip dataset synth``: write the synthetic-but-real event recognition benchmark."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="make training/benchmark datasets")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser(
        "synth",
        help="emoji, digits and letters moved in saccades over a virtual sensor, as event files + images + labels",
        description="Deterministic for a seed. Layout: classes.json, index.csv, events/<class>/*.raw (EVT 3.0), "
        "images/<class>/*.png, meta.json (see docs/training.md).",
    )
    s.add_argument("--out", required=True, help="new or empty folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--emoji", type=int, default=48, help="number of emoji classes (OpenMoji, CC BY-SA 4.0)")
    s.add_argument("--letters", type=int, default=16, help="number of letter classes")
    s.add_argument("--digits", type=int, default=10, help="number of digit classes (0-10)")
    s.add_argument("--samples", type=int, default=6, help="recordings per class")
    s.add_argument("--format", default=None, help="event file format name (default: from --extension)")
    s.add_argument("--extension", default=".raw", help="event file extension (.raw = EVT 3.0)")
    s.set_defaults(func=run)
    m = sub.add_parser(
        "sample",
        help="one continuous recording of several benchmark categories in turn, with a JSON of labelled time spans",
        description="Renders fresh recordings (not training data) of the named categories of the default benchmark "
        "and writes <out>/sample.raw (EVT 3.0) + <out>/sample.json. This made src/eventclip/data/sample.",
    )
    m.add_argument("--out", required=True, help="folder to write sample.raw and sample.json into")
    m.add_argument("--classes", nargs="+", required=True, help="category names from classes.json, in order")
    m.add_argument("--seed", type=int, default=2024, help="render seed (default 2024)")
    m.set_defaults(func=run_sample)


def run(args: argparse.Namespace) -> int:
    from eventclip.errors import ConfigError
    from eventclip.train.synth import SynthConfig, generate

    if not 0 <= args.digits <= 10:
        raise ConfigError(f"--digits must be between 0 and 10, got {args.digits}")
    cfg = SynthConfig(seed=args.seed, emoji=args.emoji, letters=args.letters, digits=args.digits,
                      samples_per_class=args.samples, format=args.format, extension=args.extension)
    out = generate(args.out, cfg, progress=True)
    n = sum(1 for _ in open(out / "index.csv")) - 1
    print(f"wrote {n} recordings to {out}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from eventclip.train.synth import SynthConfig, make_sample

    path = make_sample(args.out, args.classes, SynthConfig(), args.seed)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
