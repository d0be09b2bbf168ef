"""Frame accumulation: N events into one W x H count frame, ours beside the peers, one process.

Runs: ours (numba kernel, single-threaded), ours numpy reference (np.bincount), tonic's
``to_frame_numpy`` (np.add.at), plain ``np.bincount`` on precomputed indices, dv-processing's
``Accumulator`` (no decay, contribution 1) fed from an AEDAT4 file, torch on the CPU (1 thread)
and torch CUDA when a GPU is present. Prints medians (Mev/s) and ratios to ours; never asserts.

    OMP_NUM_THREADS=1 python benchmarks/bench_frames.py [--events 20000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.frames.accumulate import count_events, count_events_reference, count_events_torch


def synthetic_events(n: int, geometry: Geometry, seed: int = 0) -> np.ndarray:
    """Time-ordered events, pixels drawn uniformly over the sensor (the cache-unfriendly case)."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"] = rng.integers(0, geometry.width, n, dtype=np.uint16)
    ev["y"] = rng.integers(0, geometry.height, n, dtype=np.uint16)
    ev["p"] = rng.integers(0, 2, n, dtype=np.int16)
    ev["t"] = np.arange(n, dtype=np.int64)
    return ev


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (compilation, allocation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def dv_runner(ev: np.ndarray, geometry: Geometry, workdir: Path) -> Callable[[], object] | str:
    try:
        import dv_processing as dv
    except ImportError:
        return "skipped: dv-processing not installed"
    from eventclip.io import write_events

    path = workdir / "bench.aedat4"
    write_events(path, ev, geometry)
    rec = dv.io.MonoCameraRecording(str(path))
    stores = []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is None:
            break
        stores.append(batch)
    if sum(s.size() for s in stores) != len(ev):
        return "skipped: dv-processing read back a different number of events"
    acc = dv.Accumulator((geometry.width, geometry.height), dv.Accumulator.Decay.NONE, 0.0, False,
                         1.0, 1e9, 0.0, 0.0, True)

    def run() -> object:
        acc.clear()
        for s in stores:
            acc.accept(s)
        return acc.getPotentialSurface()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-repeats", type=int, default=2, help="repeats for the slow peers (np.add.at)")
    args = ap.parse_args()
    g = Geometry(args.width, args.height)
    n = args.events
    ev = synthetic_events(n, g)
    want = count_events_reference(ev[:200_000], g)[0]

    rows: list[tuple[str, float | str]] = []

    def bench(name: str, fn: Callable[[], object] | str, repeats: int = args.repeats) -> None:
        if isinstance(fn, str):
            rows.append((name, fn))
            return
        rows.append((name, n / median_seconds(fn, repeats) / 1e6))

    assert np.array_equal(count_events(ev[:200_000], g)[0], want)
    bench("eventclip numba (1 thread)", lambda: count_events(ev, g))
    bench("eventclip numba, per polarity", lambda: count_events(ev, g, per_polarity=True))
    bench("eventclip numpy reference", lambda: count_events_reference(ev, g), args.slow_repeats)
    index = ev["y"].astype(np.int64) * g.width + ev["x"]
    bench("np.bincount (index precomputed)", lambda: np.bincount(index, minlength=g.width * g.height))

    try:
        import tonic.functional as tf

        tev = np.empty(n, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")])
        for f in ("x", "y", "t", "p"):
            tev[f] = ev[f]
        sensor = (g.width, g.height, 2)
        got = tf.to_frame_numpy(tev[:200_000], sensor, n_event_bins=1)[0].sum(0)
        assert np.array_equal(got, want)
        bench("tonic to_frame_numpy (np.add.at)", lambda: tf.to_frame_numpy(tev, sensor, n_event_bins=1),
              args.slow_repeats)
    except ImportError:
        rows.append(("tonic to_frame_numpy (np.add.at)", "skipped: tonic not installed"))

    with tempfile.TemporaryDirectory() as tmp:
        bench("dv-processing Accumulator", dv_runner(ev, g, Path(tmp)), args.slow_repeats)

    try:
        import torch

        torch.set_num_threads(1)
        raw = torch.from_numpy(ev.view(np.int64).reshape(-1, 2))
        assert np.array_equal(count_events_torch(ev[:200_000], g)[0].numpy(), want)
        bench("eventclip torch CPU (1 thread)", lambda: count_events_torch(raw, g), args.slow_repeats)
        if torch.cuda.is_available():
            dev_raw = raw.cuda()

            def cuda_run() -> object:
                out = count_events_torch(dev_raw, g)
                torch.cuda.synchronize()
                return out

            bench(f"eventclip torch CUDA ({torch.cuda.get_device_name()})", cuda_run)
        else:
            rows.append(("eventclip torch CUDA", "skipped: no CUDA"))
    except ImportError:
        rows.append(("eventclip torch", "skipped: torch not installed"))

    ours = rows[0][1]
    print(f"\nFrame accumulation: {n:,} events into {g.width}x{g.height}, uniform pixels; median of runs")
    print(f"{'implementation':44s} {'Mev/s':>10s} {'vs ours':>9s}")
    for name, value in rows:
        if isinstance(value, str):
            print(f"{name:44s} {value}")
        else:
            print(f"{name:44s} {value:10.1f} {value / ours:8.2f}x")


if __name__ == "__main__":
    main()
