"""``eventclip video2events VIDEO OUT``: turn an ordinary video into a real event file."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "video2events",
        help="convert a video (anything OpenCV reads) into an event file (.raw = EVT 3.0, .aedat4, ...)",
        description="DVS simulator (log-intensity contrast thresholds, interpolated timestamps) or the paper's "
        "simple frame-difference mode. The output format follows OUT's extension unless --format is given.",
    )
    p.add_argument("video", help="input video file")
    p.add_argument("out", help="output event file (.raw -> EVT 3.0, .aedat4 -> AEDAT 4.0)")
    p.add_argument("--mode", choices=("dvs", "paper"), default="dvs")
    p.add_argument("--threshold", type=float, default=None,
                   help="dvs: log-intensity contrast for ON and OFF (default 0.2); "
                        "paper: gray difference 0-255 (default 10)")
    p.add_argument("--on-threshold", type=float, default=None, help="dvs: ON contrast (overrides --threshold)")
    p.add_argument("--off-threshold", type=float, default=None, help="dvs: OFF contrast (overrides --threshold)")
    p.add_argument("--refractory-us", type=int, default=0, help="dvs: per-pixel dead time after an event, µs")
    p.add_argument("--fps", type=float, default=None, help="frame rate to assume when the video does not say")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--format", default=None, help="output format name (evt3, evt2, aedat4, dat)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eventclip._optional import require
    from eventclip.io import open_writer
    from eventclip.sensors.errors import VideoError
    from eventclip.sensors.video_events import VideoToEvents

    cv2 = require("cv2", "video", "reading video files")
    threshold = args.threshold
    on = args.on_threshold if args.on_threshold is not None else (threshold if threshold is not None else 0.2)
    off = args.off_threshold if args.off_threshold is not None else (threshold if threshold is not None else 0.2)
    if args.mode == "paper":
        conv = VideoToEvents("paper", threshold=threshold)
    else:
        conv = VideoToEvents("dvs", on_threshold=on, off_threshold=off, refractory_us=args.refractory_us)
    cap = cv2.VideoCapture(args.video)
    try:
        if not cap.isOpened():
            raise VideoError(f"{args.video}: OpenCV cannot open this video (missing file, or a codec it lacks)")
        fps = args.fps or cap.get(cv2.CAP_PROP_FPS)
        if not fps or fps <= 0:
            raise VideoError(f"{args.video}: the video does not state its frame rate; pass --fps")
        writer = None
        n_frames = n_events = 0
        try:
            while args.max_frames is None or n_frames < args.max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                events = conv.push(gray, round(n_frames * 1e6 / fps))
                if writer is None:
                    writer = open_writer(args.out, conv.geometry, format=args.format)
                if len(events):
                    writer.write(events)
                    n_events += len(events)
                n_frames += 1
        finally:
            if writer is not None:
                writer.close()
        if n_frames == 0:
            raise VideoError(f"{args.video}: OpenCV opened the file but decoded no frames (corrupt or empty video)")
    finally:
        cap.release()
    print(f"{args.video}: {n_frames} frames at {fps:g} fps -> {n_events} events ({conv.geometry}) in {args.out}")
    return 0
