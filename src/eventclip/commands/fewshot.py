"""``eventclip fewshot fit SUPPORT_DIR --model M --k K``: a few-shot head from k recordings per class."""

from __future__ import annotations

import argparse

from eventclip.commands._model import MODEL_HELP
from eventclip.commands._recording import add_recording_options, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fewshot",
        help="few-shot heads (linear probe, Tip-Adapter cache) from labelled recordings",
        description="SUPPORT_DIR holds one folder per class with event recordings; the first K recordings "
        "(sorted by name) of each class are windowed and encoded. 'probe' fits a softmax regression started "
        "from the zero-shot classifier; 'tip' stores a training-free cache blended with zero-shot logits. "
        "The head is saved as heads/<method>.npz in the package; use it with 'classify --head <method>'.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    fit = sub.add_parser("fit", help="fit a head from SUPPORT_DIR/<class>/<recordings>")
    fit.add_argument("support", help="folder with one sub-folder of recordings per class")
    fit.add_argument("--model", required=True, help=MODEL_HELP + "; the head is written into it")
    fit.add_argument("--k", type=int, required=True, choices=(1, 2, 5, 10, 20), help="recordings per class")
    fit.add_argument("--method", choices=("probe", "tip"), default="probe")
    fit.add_argument("--prompts", default=None, help="prompts YAML whose class names match the folders "
                     "(default: folder names with the default templates)")
    fit.add_argument("--alpha", type=float, default=1.0, help="tip: weight of the cache term")
    fit.add_argument("--beta", type=float, default=5.5, help="tip: sharpness of the affinity exp(-beta(1-cos))")
    add_recording_options(fit)
    fit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eventclip.model.hub import resolve_model

    args.model = str(resolve_model(args.model))
    from pathlib import Path

    import numpy as np

    from eventclip.errors import ConfigError
    from eventclip.heads.classifier import as_numpy
    from eventclip.heads.probe import LinearProbe
    from eventclip.heads.prompts import PromptSet, embed_prompts, load_prompts
    from eventclip.heads.tip import TipAdapter
    from eventclip.model.card import ModelCard
    from eventclip.model.package import save_head
    from eventclip.stream import embed_file, open_encoder

    support = Path(args.support)
    classes = sorted(d for d in support.iterdir() if d.is_dir()) if support.is_dir() else []
    if not classes:
        raise ConfigError(f"{support}: needs one sub-folder of recordings per class; found none")
    card = ModelCard.read(args.model)
    rep = card.representation_model()
    window_us = args.window_us or rep.window_us
    labels = [d.name for d in classes]
    prompts = load_prompts(args.prompts) if args.prompts else PromptSet(classes=labels)
    missing = sorted(set(labels) - set(prompts.labels))
    if missing:
        raise ConfigError(f"{args.prompts}: classes {missing} of {support} have no entry in the prompts file")
    open_kw = {"format": args.format, "geometry": geometry_arg(args)}
    encoder = open_encoder(args.model, args.backend)
    embs, targets, used = [], [], {}
    for ci, folder in enumerate(classes):
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if len(files) < args.k:
            raise ConfigError(f"{folder}: has {len(files)} recordings, --k {args.k} needs at least {args.k}")
        for f in files[: args.k]:
            e, _ = embed_file(f, encoder, rep, window_us, **open_kw)
            if len(e) == 0:
                raise ConfigError(f"{f}: no events in any {window_us} µs window; cannot use it as a support example")
            embs.append(e)
            targets.append(np.full(len(e), ci))
        used[folder.name] = [f.name for f in files[: args.k]]
    x, y = np.concatenate(embs), np.concatenate(targets)
    order = [prompts.labels.index(lab) for lab in labels]
    text = embed_prompts(prompts, lambda p: as_numpy(encoder.encode_text(p))).classes[order]
    if args.method == "probe":
        head = LinearProbe.fit(x, y, labels, text_embeddings=text, logit_scale=card.logit_multiplier)
    else:
        head = TipAdapter(x, y, labels, text_embeddings=text, logit_scale=card.logit_multiplier,
                          alpha=args.alpha, beta=args.beta)
    train_acc = float((head.probs(x).argmax(axis=1) == y).mean())
    path = save_head(args.model, args.method, head, k=args.k, support=str(support), recordings=used,
                     window_us=window_us, support_windows=int(len(x)), train_accuracy=train_acc)
    print(f"{path}: {args.method} head, {len(labels)} classes, k={args.k}, {len(x)} support windows, "
          f"accuracy on the support set {train_acc:.3f}")
    return 0
