"""Live sources beside their peers, in one process. Prints tables; never asserts a speed.

1. Reading a real AEDAT4 recording (DVXplorer, 112k events) end to end: dv-processing's
   MonoCameraRecording and faery (peers), eventclip.io, and the eventclip ``replay`` source as
   fast as possible (1 ms time slices). Median of ``--repeat`` runs; ratio = time / dv-processing.
2. A DV network stream over TCP loopback: a NetworkWriter in a child process sends ``--net-events``
   generated events; received by a bare dv.io.NetworkReader poll loop (peer) and by the eventclip
   ``inivation`` source. Median Mev/s over ``--repeat`` runs.
3. Replay pacing on the real host clock: a ``--pace-s`` second recording at speed 1.0 in 1 ms
   chunks; lateness of each chunk against its schedule (p50/p99/max, µs) and the end-to-end error.
   No peer here offers a paced replay to compare with (Metavision's LiveReplayEventsIterator is
   not installable from a registry).

    OMP_NUM_THREADS=1 python benchmarks/bench_sensors.py [--repeat 5] [--net-events 2000000] [--pace-s 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from eventclip.events import Geometry, make_events
from eventclip.io import open_events, write_events
from eventclip.sensors import create
from eventclip.sensors.replay import ReplayConfig, ReplaySource

ROOT = Path(__file__).resolve().parents[1]
DVX = ROOT.parent / "shared" / "data" / "recordings" / "inivation_dvxplorer_320x240.aedat4"


def timed(fn, repeat: int) -> tuple[float, int]:
    """Median seconds of ``fn()`` over ``repeat`` runs, and the event count it returned."""
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def read_dv(path: Path) -> int:
    import dv_processing as dv

    rec = dv.io.MonoCameraRecording(str(path))
    n = 0
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is not None:
            n += len(batch.numpy())
    return n


def read_faery(path: Path) -> int:
    import faery

    return sum(len(ev) for ev in faery.events_stream_from_file(path))


def read_io(path: Path) -> int:
    with open_events(path) as stream:
        return sum(len(c) for c in stream)


def read_replay(path: Path) -> int:
    with create({"kind": "replay", "path": str(path), "realtime": False, "chunk_us": 1000}) as src:
        return sum(len(c) for c in src)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def bench_files(repeat: int) -> None:
    if not DVX.is_file():
        print(f"\n(file reading skipped: {DVX} not found)")
        return
    runs = [("dv-processing MonoCameraRecording", read_dv), ("faery events_stream_from_file", read_faery),
            ("eventclip.io open_events", read_io), ("eventclip replay (fast, 1 ms chunks)", read_replay)]
    results = [(name, *timed(lambda f=fn: f(DVX), repeat)) for name, fn in runs]
    base = results[0][1]
    rows = [[name, f"{n}", f"{t * 1e3:.1f}", f"{n / t / 1e6:.1f}", f"{t / base:.2f}"] for name, t, n in results]
    table(f"Reading {DVX.name} (median of {repeat})", ["reader", "events", "ms", "Mev/s", "time/dv"], rows)


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import dv_processing as dv
    port, n = int(sys.argv[1]), int(sys.argv[2])
    w = dv.io.NetworkWriter("127.0.0.1", port, dv.io.Stream.EventStream(0, "events", "bench", (640, 480)))
    stores, t = [], 1_700_000_000_000_000
    per = 20_000
    for k in range(0, n, per):
        s = dv.EventStore()
        for i in range(min(per, n - k)):
            t += 1
            s.push_back(t, i % 640, i % 480, bool(i & 1))
        stores.append(s)
    print("ready", flush=True)
    while w.getClientCount() < 1:
        time.sleep(0.001)
    for s in stores:
        w.writeEvents(s)
    time.sleep(600)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net_run(n: int, ours: bool, script: Path) -> float:
    """Seconds from connection to the last of ``n`` events received."""
    import dv_processing as dv

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        got = 0
        if ours:
            src = create({"kind": "inivation", "host": "127.0.0.1", "port": port})
            src.open()
            t0 = time.perf_counter()
            for chunk in src:
                got += len(chunk)
                if got >= n:
                    break
            elapsed = time.perf_counter() - t0
            src.close()
        else:
            reader = dv.io.NetworkReader("127.0.0.1", port)
            t0 = time.perf_counter()
            while got < n:
                batch = reader.getNextEventBatch()
                if batch is None:
                    time.sleep(0.001)
                    continue
                got += len(batch.numpy())
            elapsed = time.perf_counter() - t0
            del reader
        return elapsed
    finally:
        proc.kill()
        proc.wait()


def bench_network(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "writer.py"
        script.write_text(WRITER)
        rows = []
        results = {}
        for name, ours in (("dv.io.NetworkReader poll loop", False), ("eventclip inivation source", True)):
            results[name] = statistics.median(net_run(n, ours, script) for _ in range(repeat))
        base = results["dv.io.NetworkReader poll loop"]
        for name, t in results.items():
            rows.append([name, f"{n}", f"{t * 1e3:.0f}", f"{n / t / 1e6:.2f}", f"{t / base:.2f}"])
    table(f"DV network stream, TCP loopback (median of {repeat})", ["receiver", "events", "ms", "Mev/s", "time/dv"],
          rows)


def bench_pacing(seconds: float) -> None:
    rng = np.random.default_rng(0)
    n = int(seconds * 20_000)
    t = np.sort(rng.integers(0, int(seconds * 1e6), n))
    t[-1] = int(seconds * 1e6) - 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paced.aedat4"
        write_events(path, make_events(t % 64, t % 48, t & 1, t), Geometry(64, 48))
        readings: list[float] = []

        def clock() -> float:  # the host monotonic clock, remembering the replay's first reading (its start)
            readings.append(time.monotonic())
            return readings[-1]

        src = ReplaySource(ReplayConfig(path=path, chunk_us=1000), clock=clock)
        src.open()
        late = []
        first = int(t[0])
        for chunk in src:
            late.append((time.monotonic() - (readings[0] + (chunk.t_end_us - first) / 1e6)) * 1e6)
        total = time.monotonic() - readings[0]
    late = np.array(late)
    expected = (int(t[-1]) // 1000 + 1) * 1000 / 1e6 - (first // 1000) * 1000 / 1e6
    rows = [[f"{len(late)}", f"{np.percentile(late, 50):.0f}", f"{np.percentile(late, 99):.0f}", f"{late.max():.0f}",
             f"{expected:.3f}", f"{total:.3f}", f"{(total - expected) / expected * 100:+.3f}"]]
    table(f"Replay pacing on the host clock, speed 1.0, 1 ms chunks, {seconds:g} s recording",
          ["chunks", "late p50 µs", "late p99 µs", "late max µs", "expected s", "took s", "error %"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--net-events", type=int, default=2_000_000)
    p.add_argument("--pace-s", type=float, default=5.0)
    args = p.parse_args()
    bench_files(args.repeat)
    bench_network(args.net_events, max(1, args.repeat // 2))
    bench_pacing(args.pace_s)


if __name__ == "__main__":
    main()
