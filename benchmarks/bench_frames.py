"""Frame accumulation: N events into one W x H count frame, ours beside the peers, one process.

Runs: ours (numba kernel, single-threaded; also as the daemon counts: RunningCounts fed 1 M-event
chunks; and counting on the model's 224 and 64 px grids), ours numpy reference (np.bincount), tonic's
``to_frame_numpy`` (np.add.at), plain ``np.bincount`` on precomputed indices, dv-processing's
``Accumulator`` (no decay, contribution 1) fed from an AEDAT4 file, torch on the CPU (1 thread)
and torch CUDA when a GPU is present. Prints medians (Mev/s) and ratios to ours; never asserts.

    OMP_NUM_THREADS=1 python benchmarks/bench_frames.py [--events 20000000] [--repeats 5] [--pattern driving]
    OMP_NUM_THREADS=1 python benchmarks/bench_frames.py --footprint   # scatter speed vs counts-buffer size
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.frames.accumulate import (
    count_events,
    count_events_reference,
    count_events_torch,
)
from eventclip.frames.grid import model_grid


def synthetic_events(n: int, geometry: Geometry, seed: int = 0) -> np.ndarray:
    """Time-ordered events, pixels drawn uniformly over the sensor (the cache-unfriendly case)."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"] = rng.integers(0, geometry.width, n, dtype=np.uint16)
    ev["y"] = rng.integers(0, geometry.height, n, dtype=np.uint16)
    ev["p"] = rng.integers(0, 2, n, dtype=np.int16)
    ev["t"] = np.arange(n, dtype=np.int64)
    return ev


def driving_events(n: int) -> np.ndarray:
    """Real pixel statistics: the x/y/p of the Gen4.1 1280x720 driving recording (as decoded by
    expelliarmus, from the shared recordings folder), repeated to ``n`` events with fresh times."""
    from pathlib import Path as _Path

    ref = (_Path(__file__).resolve().parents[1].parent
           / "shared/data/recordings/prophesee_evt3_driving_gen41_1280x720.expelliarmus_ref.npy")
    src = np.load(ref)
    reps = -(-n // len(src))
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"] = np.tile(src["x"], reps)[:n]
    ev["y"] = np.tile(src["y"], reps)[:n]
    ev["p"] = np.tile(src["p"], reps)[:n]
    ev["t"] = np.arange(n, dtype=np.int64)
    return ev


def round_robin(runners: dict[str, Callable[[], object]], repeats: int, slow: set[str],
                slow_repeats: int) -> dict[str, float]:
    """Median seconds per runner, timing them in turns so load changes on a shared machine hit all alike."""
    for fn in runners.values():
        fn()  # warm-up (compilation, allocation)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for rnd in range(repeats):
        for name, fn in runners.items():
            if name in slow and rnd >= slow_repeats:
                continue
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


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


def running_counts(ev: np.ndarray, geometry: Geometry, per_polarity: bool) -> np.ndarray:
    """The daemon's path: one window counted as 1 M-event chunks arrive (RunningCounts), then taken."""
    from eventclip.frames.running import RunningCounts
    from eventclip.frames.windows import DurationWindower

    windower = DurationWindower(int(ev["t"][-1] - ev["t"][0]) + 1)
    running = RunningCounts(windower, geometry, per_polarity=per_polarity)
    for a in range(0, len(ev), 1_000_000):
        windower.push(ev[a:a + 1_000_000])
        running.add(ev[a:a + 1_000_000])
    (window,) = windower.flush()
    return running.take(window)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def read_all(words: np.ndarray) -> int:
    """Sum of every 8-byte word of the events, contiguous (LLVM vectorises it with plain loads):
    the memory-bandwidth ceiling for one core reading the 16-byte records."""
    acc = np.uint64(0)
    for i in range(words.shape[0]):
        acc += np.uint64(words[i])
    return int(acc)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def unchecked_scatter(words: np.ndarray, width: int, counts: np.ndarray) -> None:
    """The counting loop with nothing but index and increment: no geometry check, and the index is
    masked (not checked) so it stays memory-safe. The instruction-count ceiling of a scalar scatter."""
    d = np.uint64(65536 - width)
    mask = np.uint64(counts.shape[0] - 1)
    for i in range(words.shape[0] // 2):
        u = np.uint64(words[2 * i]) & np.uint64(0xFFFFFFFF)
        counts[(u - (u >> np.uint64(16)) * d) & mask] += np.uint32(1)


FOOTPRINTS = ((64, 64), (256, 256), (512, 512), (1280, 720), (4096, 4096))
"""Geometries for --footprint: uint32 counts of 16 KiB (L1), 256 KiB and 1 MiB (L2), 3.5 MiB (L3), 64 MiB (DRAM)."""


def footprint(n: int, repeats: int) -> None:
    """The unchecked scatter's speed against the size of its counts buffer, uniform pixels.

    Why: it shows what bounds a single-threaded scatter on this machine (the cache level holding
    the counts), so a target can be judged against the hardware rather than against our code.
    """
    runners: dict[str, Callable[[], object]] = {}
    for w, h in FOOTPRINTS:
        words = synthetic_events(n, Geometry(w, h)).view(np.int64)
        counts = np.zeros(1 << (w * h - 1).bit_length(), np.uint32)
        unchecked_scatter(words, w, counts)
        runners[f"{w}x{h} ({counts.nbytes / 2**20:.3g} MiB of uint32 counts)"] = (
            lambda words=words, w=w, counts=counts: unchecked_scatter(words, w, counts))
    seconds = round_robin(runners, repeats, set(), repeats)
    print(f"\nUnchecked scatter (index + increment, one thread), {n:,} uniform events, medians of {repeats}")
    for name, sec in seconds.items():
        print(f"{name:44s} {n / sec / 1e6:10.1f} Mev/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-repeats", type=int, default=2, help="repeats for the slow peers (np.add.at)")
    ap.add_argument("--pattern", choices=("uniform", "driving"), default="uniform",
                    help="uniform pixels (worst case for caches) or a real 1280x720 recording's pixels, repeated")
    ap.add_argument("--footprint", action="store_true",
                    help="instead: the bare scatter's speed for counts buffers from 16 KiB (L1) to 64 MiB (DRAM)")
    args = ap.parse_args()
    if args.footprint:
        footprint(args.events, args.repeats)
        return
    g = Geometry(args.width, args.height)
    n = args.events
    ev = synthetic_events(n, g) if args.pattern == "uniform" else driving_events(n)
    want = count_events_reference(ev[:200_000], g)[0]

    runners: dict[str, Callable[[], object]] = {}
    skipped: dict[str, str] = {}
    slow: set[str] = set()

    assert np.array_equal(count_events(ev[:200_000], g)[0], want)
    assert np.array_equal(running_counts(ev[:200_000], g, True).sum(0), want)
    runners["eventclip numba (1 thread)"] = lambda: count_events(ev, g)
    runners["eventclip numba, per polarity"] = lambda: count_events(ev, g, per_polarity=True)
    runners["eventclip RunningCounts, 1 M-event chunks"] = lambda: running_counts(ev, g, False)
    runners["eventclip RunningCounts, per polarity"] = lambda: running_counts(ev, g, True)
    for size in (224, 64):  # counting on the model's grid (Representation count_at: model)
        grid = model_grid(g, size)
        head = ev[:200_000]
        assert np.array_equal(count_events(head, g, grid=grid), count_events_reference(head, g, grid=grid))
        runners[f"eventclip numba, on the {size}x{size} model grid"] = lambda grid=grid: count_events(ev, g, grid=grid)
        runners[f"eventclip numba, {size}x{size} grid, per polarity"] = (
            lambda grid=grid: count_events(ev, g, per_polarity=True, grid=grid))
    runners["eventclip numpy reference"] = lambda: count_events_reference(ev, g)
    slow.add("eventclip numpy reference")
    index = ev["y"].astype(np.int64) * g.width + ev["x"]
    runners["np.bincount (index precomputed)"] = lambda: np.bincount(index, minlength=g.width * g.height)
    words = ev.view(np.int64)
    read_all(words)
    runners["ceiling: contiguous read of all event bytes"] = lambda: read_all(words)
    span = 1 << (g.width * g.height - 1).bit_length()
    unchecked_scatter(words, g.width, np.zeros(span, np.uint32))
    runners["ceiling: unchecked scatter (no geometry check)"] = lambda: unchecked_scatter(
        words, g.width, np.zeros(span, np.uint32))

    name = "tonic to_frame_numpy (np.add.at)"
    try:
        import tonic.functional as tf

        tev = np.empty(n, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")])
        for f in ("x", "y", "t", "p"):
            tev[f] = ev[f]
        sensor = (g.width, g.height, 2)
        assert np.array_equal(tf.to_frame_numpy(tev[:200_000], sensor, n_event_bins=1)[0].sum(0), want)
        runners[name] = lambda: tf.to_frame_numpy(tev, sensor, n_event_bins=1)
        slow.add(name)
    except ImportError:
        skipped[name] = "skipped: tonic not installed"

    tmp = tempfile.TemporaryDirectory()
    dv_run = dv_runner(ev, g, Path(tmp.name))
    name = "dv-processing Accumulator"
    if isinstance(dv_run, str):
        skipped[name] = dv_run
    else:
        runners[name] = dv_run
        slow.add(name)

    try:
        import torch

        torch.set_num_threads(1)
        raw = torch.from_numpy(ev.view(np.int64).reshape(-1, 2))
        assert np.array_equal(count_events_torch(ev[:200_000], g)[0].numpy(), want)
        runners["eventclip torch CPU (1 thread)"] = lambda: count_events_torch(raw, g)
        slow.add("eventclip torch CPU (1 thread)")
        if torch.cuda.is_available():
            dev_raw = raw.cuda()

            def cuda_run() -> object:
                out = count_events_torch(dev_raw, g)
                torch.cuda.synchronize()
                return out

            runners[f"eventclip torch CUDA ({torch.cuda.get_device_name()})"] = cuda_run
        else:
            skipped["eventclip torch CUDA"] = "skipped: no CUDA"
    except ImportError:
        skipped["eventclip torch"] = "skipped: torch not installed"

    seconds = round_robin(runners, args.repeats, slow, args.slow_repeats)
    tmp.cleanup()
    rows: list[tuple[str, float | str]] = [(k, n / v / 1e6) for k, v in seconds.items()]
    rows += list(skipped.items())
    ours = rows[0][1]
    print(f"\nFrame accumulation: {n:,} events into {g.width}x{g.height}, {args.pattern} pixels; medians, "
          f"{args.repeats} rounds ({args.slow_repeats} for the slow peers), timed in turns")
    print(f"{'implementation':44s} {'Mev/s':>10s} {'vs ours':>9s}")
    for name, value in rows:
        if isinstance(value, str):
            print(f"{name:44s} {value}")
        else:
            print(f"{name:44s} {value:10.1f} {value / ours:8.2f}x")


if __name__ == "__main__":
    main()
