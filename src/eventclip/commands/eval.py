"""``eventclip eval zero-shot|few-shot|linear-probe --dataset D --root PATH --model PKG``."""

from __future__ import annotations

import argparse

from eventclip.commands._model import MODEL_HELP
from eventclip.commands._recording import add_backend_option
from eventclip.heads.base import HEADS

KINDS = ("zero-shot", "few-shot", "linear-probe")
DATASETS = ("ncaltech101", "nmnist", "nimagenet", "cifar10dvs", "asldvs", "dvsgesture", "folder")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,2,5, got {text!r}") from exc
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="accuracy on a standard event dataset (zero-shot, few-shot, linear probe) with a JSON report",
        description="Reads the dataset as its authors distribute it (layouts in docs/evaluation.md), turns each "
        "sample into one event frame with the model card's representation, and reports top-1/top-5, per-class "
        "accuracy and the sample count; few-shot gives mean ± std over seeds. Writes OUT/report.json (with the "
        "model hash and the command) and OUT/confusion.png.",
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, help="dataset folder as downloaded")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--shots", type=_ints, default=[1, 2, 5, 10, 20], help="few-shot k values (default 1,2,5,10,20)")
    p.add_argument("--seeds", type=int, default=3, help="few-shot support draws per k (seeds 0..N-1; default 3)")
    p.add_argument("--head", choices=HEADS.choices_where(output="labels", fitted=True), default="tip",
                   help="few-shot head (default tip)")
    p.add_argument("--protocol", default="standard", help="standard, or paper (nimagenet: 100 classes, 20 held out, "
                   "30,000-event slices, fixed seed)")
    p.add_argument("--subset", choices=("all", "seen", "unseen"), default="all",
                   help="only the classes the model card lists as seen / unseen in training (folder datasets)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test", help="zero-shot: samples to score")
    p.add_argument("--window-us", type=int, default=None, help="one centred window of this many µs per sample")
    p.add_argument("--n-events", type=int, default=None, help="one random run of this many events per sample")
    words = p.add_mutually_exclusive_group()
    words.add_argument("--templates", nargs="+", default=None,
                       help="prompt templates with {} around the class texts (default: the training templates)")
    words.add_argument("--prompts", default=None, help="prompts YAML whose class names are the dataset's "
                       "(e.g. zero_shot_prompts/nmnist.yaml): its templates and synonyms replace the class texts")
    add_backend_option(p)
    p.add_argument("--batch", type=int, default=32, help="samples per encoder call")
    p.add_argument("--out", default=None, help="report folder (default eval-<dataset>-<kind>)")
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces this run, every option spelled out."""
    import shlex

    parts = ["eventclip", "eval", args.kind, "--dataset", args.dataset, "--root", args.root, "--model", args.model]
    if args.kind == "few-shot":
        parts += ["--shots", ",".join(map(str, args.shots)), "--seeds", str(args.seeds), "--head", args.head]
    if args.kind == "zero-shot":
        parts += ["--split", args.split]
    parts += ["--protocol", args.protocol, "--subset", args.subset]
    for opt in ("window_us", "n_events"):
        if getattr(args, opt) is not None:
            parts += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    if args.templates:
        parts += ["--templates", *args.templates]
    if args.prompts:
        parts += ["--prompts", args.prompts]
    parts += ["--backend", args.backend, "--out", str(args.out)]
    return shlex.join(parts)


def _subset(ds, card, which: str):
    from eventclip.errors import ConfigError

    if which == "all":
        return ds
    names = card.training.get(f"{which}_classes")
    if not names:
        raise ConfigError(f"--subset {which}: the model card lists no {which}_classes under 'training'")
    keep = [i for i, c in enumerate(ds.classes) if c in set(names)]
    if not keep:
        raise ConfigError(f"--subset {which}: none of the card's {which} classes is a class of {ds.root}")
    return ds.restrict(keep, f"{which} classes of the model card ({len(keep)})")


def run(args: argparse.Namespace) -> int:
    from eventclip.model.hub import resolve_model

    args.model = str(resolve_model(args.model))
    import dataclasses
    import time
    from pathlib import Path

    import numpy as np

    from eventclip.datasets import load_dataset
    from eventclip.datasets.base import PROMPT_TEMPLATES, EventSlice
    from eventclip.errors import ConfigError
    from eventclip.eval import protocols
    from eventclip.eval.report import confusion_png, summary_lines, write_json
    from eventclip.model.card import ModelCard
    from eventclip.stream import open_encoder

    if args.seeds <= 0 or args.batch <= 0:
        raise ConfigError(f"--seeds and --batch must be > 0, got {args.seeds} and {args.batch}")
    args.out = args.out or f"eval-{args.dataset}-{args.kind}"
    started = time.time()
    card = ModelCard.read(Path(args.model))
    rep = card.representation_model()
    held_out = card.training.get("split", {}).get("held_out_files") if args.dataset == "folder" else None
    ds = _subset(load_dataset(args.dataset, args.root, protocol=args.protocol, held_out_files=held_out), card,
                 args.subset)
    if args.window_us is not None or args.n_events is not None:
        ds.slice = EventSlice(window_us=args.window_us, n_events=args.n_events)
    elif args.dataset == "folder":
        ds.slice = EventSlice(window_us=rep.window_us)
    encoder = open_encoder(args.model, args.backend)
    if args.prompts:
        from eventclip.heads.prompts import load_prompts

        prompt_set = load_prompts(args.prompts)
        templates = prompt_set.templates
        text = protocols.prompt_file_embeddings(encoder.encode_text, prompt_set, ds.classes, args.prompts)
    else:
        templates = args.templates or list(PROMPT_TEMPLATES)
        text = protocols.class_text_embeddings(encoder.encode_text, ds.texts, templates)
    scale = card.logit_multiplier

    def embed(samples, what):
        from eventclip.progress import bar

        with bar(total=len(samples), desc=f"embedding {what}", unit="sample") as shown:
            return protocols.embed_samples(samples, encoder, rep, ds.geometry, ds.slice, args.batch,
                                           lambda i, n: shown.update(i - shown.n))

    if args.kind == "zero-shot":
        samples = {"test": ds.test, "train": ds.train, "all": ds.train + ds.test}[args.split]
        test = embed(samples, args.split)
        result = protocols.zero_shot(test, text, ds, scale)
        empty = {args.split: test.empty}
    else:
        train, test = embed(ds.train, "train"), embed(ds.test, "test")
        empty = {"train": train.empty, "test": test.empty}
        if args.kind == "few-shot":
            result = protocols.few_shot(train, test, text, ds, scale, args.shots, args.seeds, args.head)
        else:
            result = protocols.linear_probe(train, test, text, ds, scale)
    out = Path(args.out)
    report = {
        "command": command_line(args),
        "dataset": args.dataset,
        "root": str(Path(args.root).resolve()),
        "protocol": args.kind,
        "dataset_protocol": args.protocol,
        "notes": ds.notes,
        "event_slice": {**dataclasses.asdict(ds.slice), "description": ds.slice.describe()},
        "empty_samples": empty,
        "templates": templates,
        "prompts_file": str(Path(args.prompts).resolve()) if args.prompts else None,
        "class_texts": dict(zip(ds.classes, ds.texts, strict=True)),
        "model": {"path": str(Path(args.model).resolve()), "name": card.name, "hash": card.model_hash,
                  "files": card.files, "logit_multiplier": scale, "backend": encoder.name},
        "result": result,
        "wall_time_s": round(time.time() - started, 1),
    }
    write_json(out / "report.json", report)
    metrics = result.get("metrics", result)
    if "confusion" in metrics:
        text_of = dict(zip(ds.classes, ds.texts, strict=True))
        confusion_png(out / "confusion.png", np.array(metrics["confusion"]), [text_of[c] for c in metrics["classes"]],
                      f"{args.dataset} {args.kind}" + (f" (k={metrics['k']}, seed 0)" if "k" in metrics else ""))
    print("\n".join(summary_lines(report)))
    print(f"wrote {out / 'report.json'} and {out / 'confusion.png'}")
    return 0
