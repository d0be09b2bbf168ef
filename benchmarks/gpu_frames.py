"""CUDA frame check and timing: torch CUDA counts/frames vs the numba CPU kernel, then Gev/s.

Run on a machine with a CUDA GPU (the lead runs it from the one GPU script):

    python benchmarks/gpu_frames.py [--events 20000000] [--windows 32] [--repeats 20]

Checks (exit status 1 on any mismatch): counts equal exactly, frames of every variant agree to
1e-6, the model input agrees to 1e-4 with the CPU path, and every result stays on the GPU.
Timing uses CUDA events around the accumulation alone (events already on the device), and
separately the host -> device copy, so the two costs can be read apart. Never asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--windows", type=int, default=32, help="windows in the batched run")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cuda", help="'cpu' dry-runs the same checks without a GPU")
    args = ap.parse_args()

    import torch

    from eventclip.events import Geometry
    from eventclip.frames import Representation
    from eventclip.frames.accumulate import (
        count_events,
        count_events_torch,
        event_frames,
        event_frames_torch,
        events_to_torch,
    )

    sys.path.insert(0, "benchmarks")
    from bench_frames import synthetic_events

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA")
        return 0
    g = Geometry(1280, 720)
    ev = synthetic_events(args.events, g)
    offsets = np.linspace(0, len(ev), args.windows + 1).astype(np.int64)
    failures: list[str] = []

    raw = events_to_torch(ev, dev)
    dev_offsets = torch.from_numpy(offsets).to(dev)
    counts = count_events_torch(raw, g, dev_offsets, per_polarity=True)
    if counts.device.type != dev.type:
        failures.append("counts left the device")
    want = count_events(ev, g, offsets, per_polarity=True)
    if not np.array_equal(counts.cpu().numpy(), want):
        failures.append("CUDA counts differ from numba counts")

    small = ev[: 2_000_000]
    small_off = [0, 500_000, 500_000, 2_000_000]
    for variant in ("paper", "authors", "polarity"):
        for clip in (None, 99.0):
            f_gpu = event_frames_torch(small, g, small_off, variant=variant, clip_percentile=clip, device=dev)
            f_cpu = event_frames(small, g, small_off, variant=variant, clip_percentile=clip)
            err = float(np.abs(f_gpu.cpu().numpy() - f_cpu).max())
            if f_gpu.device.type != dev.type or err > 1e-6:
                failures.append(f"frames {variant} clip={clip}: max |gpu - cpu| = {err:.2e}, on {f_gpu.device}")
            rep = Representation(variant=variant, clip_percentile=clip)
            x_gpu = rep.model_input_torch(f_gpu)
            err = float(np.abs(x_gpu.cpu().numpy() - rep.model_input(f_cpu)).max())
            if x_gpu.device.type != dev.type or err > 1e-4:
                failures.append(f"model input {variant} clip={clip}: max |gpu - cpu| = {err:.2e}")

    def time_cuda(fn, repeats: int) -> float:
        fn()
        if dev.type != "cuda":
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / 1e3)
        return statistics.median(times)

    n = len(ev)
    rows = [
        ("counts, 1 window (events on GPU)", time_cuda(lambda: count_events_torch(raw, g, check=False), args.repeats)),
        (f"counts, {args.windows} windows (events on GPU)",
         time_cuda(lambda: count_events_torch(raw, g, dev_offsets, check=False), args.repeats)),
        (f"counts per polarity, {args.windows} windows",
         time_cuda(lambda: count_events_torch(raw, g, dev_offsets, per_polarity=True, check=False), args.repeats)),
        ("counts incl. geometry check (1 sync)", time_cuda(lambda: count_events_torch(raw, g), args.repeats)),
        ("host -> device copy of the events", time_cuda(lambda: events_to_torch(ev, dev), max(3, args.repeats // 4))),
    ]
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU (dry run)"
    print(f"\n{dev.type} frame accumulation on {name}: {n:,} events into {g.width}x{g.height}")
    print(f"{'step':46s} {'ms':>9s} {'Gev/s':>8s}")
    for name, sec in rows:
        print(f"{name:46s} {sec * 1e3:9.3f} {n / sec / 1e9:8.2f}")
    count_events(ev, g)  # warm the numba path, then time it for the ratio
    t = time.perf_counter()
    count_events(ev, g)
    cpu_s = time.perf_counter() - t
    print(f"{'numba CPU, 1 window (1 thread)':46s} {cpu_s * 1e3:9.3f} {n / cpu_s / 1e9:8.2f}")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nall {dev.type} checks passed (counts exact, frames <= 1e-6, model input <= 1e-4, results on {dev.type})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
