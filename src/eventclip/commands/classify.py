"""``eventclip classify PATH [--model M] [--prompts P]``: labels and anomaly score per time window,
optionally rendered as a review video (``--video``) or PNGs (``--frames-dir``)."""

from __future__ import annotations

import argparse

from eventclip.commands._model import MODEL_HELP
from eventclip.commands._recording import add_recording_options, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "classify",
        help="open-vocabulary labels (and anomaly scores) per time window of an event file",
        description="Slices PATH into windows of --window-us, encodes each with the model package's event "
        "encoder and prints t_start_us, t_end_us, the top-k labels with probabilities and the anomaly score "
        "(reference bank if the package has one, else the prompts' anomaly section). Empty windows are reported too.",
    )
    p.add_argument("path", help="event file (any format eventclip reads)")
    p.add_argument("--model", default="default", help=MODEL_HELP + " (default: default)")
    p.add_argument("--prompts", default=None,
                   help="prompts YAML (see zero_shot_prompts/README.md); needed for zero-shot, except with the "
                   "bundled model, whose own prompts are the default")
    p.add_argument("--head", default="zero_shot",
                   help="zero_shot (default) or a few-shot head in the package: probe, tip")
    p.add_argument("--top-k", type=int, default=None, help="labels per window (default: the prompts file's top_k)")
    p.add_argument("--batch", type=int, default=16, help="windows per encoder call")
    p.add_argument("--ema", type=float, default=None, help="smooth the anomaly score with this EMA alpha in (0, 1]")
    p.add_argument("--no-bank", action="store_true", help="ignore the package's reference anomaly bank")
    p.add_argument("--cache-dir", default=None, help="text-embedding cache folder (default ~/.cache/eventclip/text)")
    p.add_argument("--json", action="store_true", help="one JSON object per window and line")
    p.add_argument("--video", default=None, metavar="OUT.mp4",
                   help="also write an MP4 with one frame per window: the model input, its labels and the anomaly "
                   "plot (extra: video)")
    p.add_argument("--frames-dir", default=None, metavar="DIR", help="also write those frames as PNGs into DIR")
    p.add_argument("--video-fps", type=float, default=None,
                   help="frames per second of --video (default: the recording's pace, 1e6 / window length in µs)")
    add_recording_options(p)
    p.set_defaults(func=run)


def _line(r) -> str:
    labels = ", ".join(f"{lab} {p:.3f}" for lab, p in r.labels) or "-"
    anomaly = "" if r.anomaly is None else f"  anomaly {r.anomaly:.3f}{' !' if r.flag else ''}"
    return f"{r.t_start_us:>12} {r.t_end_us:>12} {r.n_events:>8}  {labels}{anomaly}"


def run(args: argparse.Namespace) -> int:
    import itertools
    import json
    import sys

    from eventclip.data import default_prompts_path
    from eventclip.errors import ConfigError
    from eventclip.heads.classifier import build_classifier
    from eventclip.heads.prompts import load_prompts
    from eventclip.model.card import ModelCard
    from eventclip.model.hub import DEFAULT_NAME, resolve_model
    from eventclip.stream import classify_file, classify_file_inputs, open_encoder

    if args.window_us is not None and args.window_us <= 0:
        raise ConfigError(f"--window-us must be > 0 µs, got {args.window_us}")
    if args.batch <= 0:
        raise ConfigError(f"--batch must be > 0, got {args.batch}")
    open_kw = {"format": args.format, "geometry": geometry_arg(args)}
    bundled = args.model == DEFAULT_NAME
    args.model = str(resolve_model(args.model))
    if args.prompts is None and bundled and args.head == "zero_shot":
        args.prompts = str(default_prompts_path())
    prompts = load_prompts(args.prompts) if args.prompts else None
    card = ModelCard.read(args.model)
    encoder = open_encoder(args.model, args.backend)
    classifier = build_classifier(args.model, encoder, prompts, head=args.head, top_k=args.top_k,
                                  use_bank=not args.no_bank, ema_alpha=args.ema, cache_dir=args.cache_dir,
                                  watch_blank=str(args.path))
    window_us = args.window_us or card.representation_model().window_us
    video = None
    if args.video is not None:
        from eventclip.render.video import Mp4Writer

        video = Mp4Writer(args.video, args.video_fps or 1e6 / window_us)
    try:
        if video is None and args.frames_dir is None:
            results = classify_file(args.path, classifier, window_us, args.batch, **open_kw)
        else:
            from eventclip.render.video import render

            scored = classifier.reference_anomaly is not None or classifier.prompt_anomaly is not None
            threshold = classifier.anomaly_threshold if scored else None
            results = render(classify_file_inputs(args.path, classifier, window_us, args.batch, **open_kw),
                             classifier.representation, threshold, video, args.frames_dir)
        first = next(results, None)  # opens and checks the file before anything is printed
        if not args.json:
            print(f"{'t_start_us':>12} {'t_end_us':>12} {'events':>8}  labels")
        for result in itertools.chain([first] if first is not None else [], results):
            print(json.dumps(result.to_dict()) if args.json else _line(result), flush=args.json)
    finally:
        if video is not None:
            video.close()
    if video is not None:
        print(f"wrote {video.frames} frames to {video.path}", file=sys.stderr)
    return 0
