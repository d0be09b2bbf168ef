"""``eventclip frames PATH``: PNG previews of the frames the encoder sees, one per window."""

from __future__ import annotations

import argparse

from eventclip.commands._recording import add_geometry_option, geometry_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "frames",
        help="write PNG previews of the event frames (one per time window)",
        description="Reads any event file eventclip knows, slices it into windows of --window-us and writes "
        "frame_<index>_<t_start_us>.png. --model-view writes the resized model input instead of the sensor-size frame.",
    )
    p.add_argument("path", help="event file")
    p.add_argument("--window-us", type=int, default=33_000, help="window length in µs (default 33000)")
    p.add_argument("--out", default="frames", help="output folder (created; default ./frames)")
    p.add_argument("--variant", choices=("paper", "authors", "polarity"), default="paper")
    p.add_argument("--clip-percentile", type=float, default=None, help="clip hot pixels at this percentile")
    p.add_argument("--model-view", action="store_true", help="write the letterboxed input_size x input_size view")
    p.add_argument("--count-at", choices=("model", "sensor"), default="model",
                   help="with --model-view: count events on the model's grid (default) or at sensor resolution "
                   "and then resize (docs/frames.md)")
    p.add_argument("--input-size", type=int, default=224, help="model resolution for --model-view (pixels)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many windows")
    add_geometry_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pydantic

    from eventclip.errors import ConfigError
    from eventclip.frames.preprocess import Representation
    from eventclip.frames.preview import frame_to_image, model_input_to_image
    from eventclip.frames.windows import iter_windows
    from eventclip.io import open_events

    try:
        # The sensor-size preview counts at sensor resolution; the model view counts as asked.
        rep = Representation(variant=args.variant, window_us=args.window_us, clip_percentile=args.clip_percentile,
                             input_size=args.input_size, count_at=args.count_at if args.model_view else "sensor")
    except pydantic.ValidationError as exc:
        raise ConfigError(f"invalid option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc
    geometry = geometry_arg(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with open_events(args.path, geometry=geometry, delta_t_us=rep.window_us) as stream:
        for w in iter_windows(stream, "delta_t", window_us=rep.window_us):
            if args.max_frames is not None and written >= args.max_frames:
                break
            frame = rep.frames([w.parts], stream.geometry)
            image = (model_input_to_image(rep.model_input(frame)[0], rep.mean, rep.std) if args.model_view
                     else frame_to_image(frame[0], rep.variant))
            image.save(out / f"frame_{written:05d}_{w.t_start}.png")
            written += 1
    print(f"wrote {written} PNG frames of {rep.window_us} µs to {out}")
    return 0

