"""Decode speed of eventclip's AEDAT 4.0 reader vs dv-processing and the `aedat` package (same file, one process).

Generates once (cached under --cache, default out/bench_io_inivation) an LZ4 AEDAT4 file of at least
--events events with OUR writer, by tiling the real DVXplorer recording in time (synthetic events when
the recordings are absent), in packets of --packet-events events (dv's recorder writes a few thousand
to tens of thousands per packet). Then decodes it with each decoder --repeat times and prints median
seconds, Mev/s and our speed relative to each peer. Also times the small-file readers (Event Stream vs
faery, N-MNIST vs tonic) on the real samples. Never asserts a speed.

    python benchmarks/bench_io_inivation.py --events 20000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("EVENTCLIP_RECORDINGS", ROOT.parent / "shared" / "data" / "recordings"))


def make_aedat4(n_events: int, packet_events: int, cache: Path) -> tuple[Path, str]:
    """The cached benchmark file (written by our Aedat4Writer on first use) and where its events came from."""
    from eventclip.events import EVENT_DTYPE, Geometry, make_events
    from eventclip.io.aedat4 import Aedat4Reader, Aedat4Writer

    path = cache / f"bench_aedat4_{n_events}_{packet_events}.aedat4"
    source = RECORDINGS / "inivation_dvxplorer_320x240.aedat4"
    note = f"tiled {source.name}" if source.is_file() else "synthetic uniform events"
    if path.exists():
        return path, note
    if source.is_file():
        with Aedat4Reader(source) as reader:
            src = np.concatenate(list(reader), dtype=EVENT_DTYPE)
            geo = reader.geometry
    else:
        rng = np.random.default_rng(0)
        geo = Geometry(320, 240)
        src = make_events(rng.integers(0, 320, 500_000), rng.integers(0, 240, 500_000),
                          rng.integers(0, 2, 500_000), np.sort(rng.integers(0, 500_000, 500_000)))
    cache.mkdir(parents=True, exist_ok=True)
    span = int(src["t"][-1] - src["t"][0]) + 1
    tmp = path.with_suffix(".tmp")
    with Aedat4Writer(tmp, geo, packet_events=packet_events) as writer:
        for k in range(-(-n_events // len(src))):
            block = src.copy()
            block["t"] += k * span
            writer.write(block)
    tmp.rename(path)
    return path, note


def ours_aedat4(path: Path) -> int:
    from eventclip.io.aedat4 import Aedat4Reader

    with Aedat4Reader(path) as reader:
        return sum(len(block) for block in reader)


def ours_aedat4_one_thread(path: Path) -> int:
    from eventclip.io.aedat4 import Aedat4Reader

    with Aedat4Reader(path, prefetch=0) as reader:
        return sum(len(block) for block in reader)


def dv_processing(path: Path) -> int:
    import dv_processing as dv

    rec = dv.io.MonoCameraRecording(str(path))
    n = 0
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is not None:
            n += len(batch.numpy())
    return n


def aedat_pkg(path: Path) -> int:
    import aedat

    return sum(len(packet["events"]) for packet in aedat.Decoder(str(path)) if "events" in packet)


def ours_es(path: Path) -> int:
    from eventclip.io.es import EsReader

    with EsReader(path) as reader:
        return sum(len(block) for block in reader)


def faery_es(path: Path) -> int:
    import faery

    return sum(len(packet) for packet in faery.events_stream_from_file(path))


def ours_nmnist(path: Path) -> int:
    from eventclip.io.datasets import NmnistReader

    with NmnistReader(path) as reader:
        return sum(len(block) for block in reader)


def tonic_nmnist(path: Path) -> int:
    import tonic.io

    return len(tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])))


def time_it(fn, path: Path, repeat: int) -> tuple[float, int]:
    """Median wall seconds over ``repeat`` runs (after one warm-up run that also compiles kernels)."""
    n = fn(path)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times), n


def table(title: str, path: Path, decoders: dict, repeat: int) -> None:
    rows = []
    for name, fn in decoders.items():
        try:
            seconds, n = time_it(fn, path, repeat)
        except ImportError as exc:
            print(f"  {name}: skipped ({exc})")
            continue
        rows.append((name, seconds, n))
    print(f"\n{title}\n  file: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"  {'decoder':<22}{'events':>12}{'median s':>11}{'Mev/s':>9}{'t / t_ours':>11}")
    ours = rows[0][1] if rows and rows[0][0].startswith("eventclip") else None
    for name, seconds, n in rows:
        ratio = f"{seconds / ours:.2f}x" if ours else "-"
        print(f"  {name:<22}{n:>12,}{seconds:>11.4f}{n / seconds / 1e6:>9.1f}{ratio:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--packet-events", type=int, default=32768)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "bench_io_inivation")
    args = parser.parse_args()
    path, note = make_aedat4(args.events, args.packet_events, args.cache)
    table(f"AEDAT 4.0, LZ4, {args.packet_events}-event packets ({note}); 't / t_ours' > 1: we are faster",
          path,
          {"eventclip aedat4": ours_aedat4, "eventclip prefetch=0": ours_aedat4_one_thread,
           "dv-processing": dv_processing, "aedat": aedat_pkg}, args.repeat)
    small = {
        "pokerdvs_trcl0_dvs.es": {"eventclip es": ours_es, "faery": faery_es},
        "nmnist_sample.bin": {"eventclip nmnist_bin": ours_nmnist, "tonic": tonic_nmnist},
    }
    for name, decoders in small.items():
        if (RECORDINGS / name).is_file():
            table(f"{name} (small real sample; per-call overhead dominates)", RECORDINGS / name, decoders,
                  max(args.repeat, 20))


if __name__ == "__main__":
    main()
