"""``eventclip anomaly fit NORMAL_RECORDING --model M``: build the reference bank for anomaly scores."""

from __future__ import annotations

import argparse

from eventclip.commands._model import MODEL_HELP
from eventclip.commands._recording import add_recording_options, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "anomaly",
        help="reference-based anomaly scores: fit a bank of normal windows into the model package",
        description="'fit' encodes every non-empty window of a recording of normal activity and stores the "
        "embeddings as heads/anomaly.npz in the package, calibrated so that --quantile of normal windows score "
        "below 0.5 (score = d / (d + d_q), d = mean cosine distance to the k nearest normal windows).",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    fit = sub.add_parser("fit", help="build the bank from a normal recording")
    fit.add_argument("normal", help="event file of normal activity")
    fit.add_argument("--model", required=True, help=MODEL_HELP + "; the bank is written into it")
    fit.add_argument("--quantile", type=float, default=0.95, help="normal quantile that scores 0.5 (default 0.95)")
    fit.add_argument("--k", type=int, default=1, help="nearest neighbours averaged (default 1)")
    add_recording_options(fit)
    fit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eventclip.model.hub import resolve_model

    args.model = str(resolve_model(args.model))
    from eventclip.errors import ConfigError
    from eventclip.heads.classifier import ANOMALY_HEAD
    from eventclip.heads.reference_anomaly import ReferenceAnomaly
    from eventclip.model.card import ModelCard
    from eventclip.model.package import save_head
    from eventclip.stream import embed_file, open_encoder

    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    card = ModelCard.read(args.model)
    rep = card.representation_model()
    window_us = args.window_us or rep.window_us
    if window_us <= 0:
        raise ConfigError(f"--window-us must be > 0 µs, got {window_us}")
    open_kw = {"format": args.format, "geometry": geometry_arg(args)}
    encoder = open_encoder(args.model, args.backend)
    emb, skipped = embed_file(args.normal, encoder, rep, window_us, **open_kw)
    bank = ReferenceAnomaly.fit(emb if len(emb) else emb.reshape(0, card.embed_dim), k=args.k, quantile=args.quantile)
    path = save_head(args.model, ANOMALY_HEAD, bank, recording=str(args.normal), window_us=window_us,
                     skipped_empty_windows=skipped)
    print(f"{path}: {len(emb)} normal windows of {window_us} µs ({skipped} empty skipped); "
          f"d_q={bank.d_q:.4f} at quantile {bank.quantile}, k={bank.k}")
    return 0
