"""``eventclip train``: train an event encoder from a recipe and write a model package."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (dotted key, YAML value), got {text!r}")
    import yaml

    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train f_E (and a small CLIP first, if the recipe says so) and write a model package",
        description="Train from a recipe. `eventclip train --recipe default --out runs/default` reproduces "
        "the shipped default model from scratch (synthesises the benchmark, trains both stages). "
        "Multi-GPU: torchrun --nproc-per-node N -m eventclip.cli train ...",
    )
    p.add_argument("--recipe", default="default", help="shipped recipe name or a YAML file (default: default)")
    p.add_argument("--out", required=True, help="run folder: data/, checkpoints, metrics_*.csv, model/")
    p.add_argument("--data", help="use this paired dataset folder instead of the recipe's data section")
    p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set stage2.epochs=5 --set losses.kl=false")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    p.add_argument("--ablation", action="store_true",
                   help="instead of one model, run the loss ablation (ct, ct+zs, ct+kl, ct+zs+kl) per seed and "
                   "write <out>/ablation.json with zero-shot, video zero-shot and few-shot accuracies")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="train once per seed into <out>/seed_<s> and record every figure's mean ± std in each card; "
                   "with --ablation: its seeds (default 0 1 2)")
    p.add_argument("--stage1-from", help="ablation: reuse stage1.pt and data/ of this earlier run folder")
    p.add_argument("--configs", nargs="+", help="ablation: subset of loss combinations, e.g. ct ct+zs+kl")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eventclip.train.recipe import load_recipe
    from eventclip.train.trainer import train

    overrides = dict(args.overrides)
    if args.data:
        overrides["data"] = {"folder": args.data}
    recipe = load_recipe(args.recipe, overrides)
    if args.ablation:
        from eventclip.train.ablation import run_ablation

        results = run_ablation(recipe, args.out, args.seeds or [0, 1, 2], args.stage1_from, args.configs)
        print(results["table"])
        print(f"wall time {results['wall_time_s']} s; details in {args.out}/ablation.json")
        return 0
    if args.seeds:
        from eventclip.train.trainer import train_seeds

        report = train_seeds(recipe, args.out, args.seeds)
        print(json.dumps(report, indent=1))
        return 0
    package = train(recipe, args.out, resume=args.resume).package
    from eventclip.train.distributed import rank

    if rank() == 0:
        card = json.loads((package / "model.json").read_text())
        print(f"model package: {package}")
        print(json.dumps(card.get("accuracy", {}), indent=1))
    return 0
