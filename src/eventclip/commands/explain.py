"""``eventclip explain PATH --model M --prompts P --out PNG``: where the event encoder looks (Chefer et al. 2021)."""

from __future__ import annotations

import argparse

from eventclip.commands._model import MODEL_HELP
from eventclip.commands._recording import add_geometry_option


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help="attention relevance map of one window: event frame, overlay, top prompts (PNG)",
        description="Picks one window of --window-us from PATH (the one holding --at-us, else the window with the "
        "most events), classifies it zero-shot with the prompts and draws the gradient-weighted attention "
        "relevance (Chefer et al. 2021) of the top prompt, or of --target, over the event frame.",
    )
    p.add_argument("path", help="event file (any format eventclip reads)")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--prompts", required=True, help="prompts YAML (see zero_shot_prompts/README.md)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--window-us", type=int, default=None, help="window length in µs (default: the model card's)")
    p.add_argument("--at-us", type=int, default=None, help="explain the window containing this time (µs, sensor time)")
    p.add_argument("--target", default=None, help="label to explain (default: the top zero-shot label)")
    p.add_argument("--top-k", type=int, default=5, help="prompts listed in the PNG")
    p.add_argument("--format", default=None, help="event file format, skipping detection")
    add_geometry_option(p)
    p.set_defaults(func=run)


def pick_window(path: str, window_us: int, at_us: int | None, **open_kw):
    """(geometry, window): the window holding ``at_us``, else the one with the most events (streamed)."""
    from eventclip.errors import ConfigError
    from eventclip.stream import open_events

    best = None
    with open_events(path, **open_kw) as events:
        geometry = events.geometry
        for w in events.windows(window_us):
            if at_us is not None:
                if w.t_start <= at_us < w.t_end:
                    best = type(w).of(w.t_start, w.t_end, w.events.copy())
                    break
            elif best is None or w.n_events > best.n_events:
                best = type(w).of(w.t_start, w.t_end, w.events.copy())
    if best is None or best.n_events == 0:
        where = f" at {at_us} µs" if at_us is not None else ""
        raise ConfigError(f"{path}: no events in a {window_us} µs window{where}; pick another --at-us")
    return geometry, best


def run(args: argparse.Namespace) -> int:
    from eventclip.model.hub import resolve_model

    args.model = str(resolve_model(args.model))
    from eventclip.commands._recording import geometry_arg
    from eventclip.errors import ConfigError
    from eventclip.explain.explain import explain_events
    from eventclip.explain.render import render_png
    from eventclip.heads.prompts import load_prompts
    from eventclip.model.clip import EventClip

    if args.window_us is not None and args.window_us <= 0:
        raise ConfigError(f"--window-us must be > 0 µs, got {args.window_us}")
    if args.top_k <= 0:
        raise ConfigError(f"--top-k must be > 0, got {args.top_k}")
    geometry = geometry_arg(args)
    prompts = load_prompts(args.prompts)
    model = EventClip.from_pretrained(args.model)
    window_us = args.window_us or model.representation.window_us
    geometry, window = pick_window(args.path, window_us, args.at_us, format=args.format, geometry=geometry)
    exp = explain_events(model, window.events, geometry, prompts, target=args.target, top_k=args.top_k)
    title = f"{args.path}  [{window.t_start}, {window.t_end}) µs, {len(window.events)} events"
    out = render_png(exp, args.out, title)
    best = ", ".join(f"{lab} {p:.3f}" for lab, p in exp.labels)
    print(f"{out}: window [{window.t_start}, {window.t_end}) µs, explained '{exp.target}' (cos {exp.score:+.3f}); "
          f"top prompts: {best}")
    return 0
