"""eventclipd under load: a paced synthetic camera at ≥ 50 Mev/s through the whole daemon, on the CPU.

A synthetic source plays the part of a busy Prophesee EVK4 (1280x720): it releases a chunk every
``--chunk-us`` of host time, paced against the absolute start like a camera driver, so a reader
that falls behind shows up as a growing backlog instead of a slower camera. The stream goes
through the real pipeline (windowing, frames, encoder, heads) with the default model (or
``--model``), and is published on a loopback socket to a real subscriber.

Reported per input rate: achieved input rate, reader-side loss (events), peak reader backlog
(events), windows/s, window drops, window-close→publish latency p50/p99 (from the subscriber's
messages) and RSS over time. Beside it, the same windows through the sequential classify path in
one thread (what ``eventclip classify`` does) as the baseline: its Mev/s says how much the
threaded pipeline buys. Never asserts a speed.

Overload (issue 18): ``--overload`` runs the first rate and twice it; ``--hog N`` runs N busy-loop
processes beside the daemon. These report the age of results at publish (p50/p99, against the
freshness budget), the RSS peak against the RSS before the stream plus the reader queue's bound,
windows dropped by reason, and events read against published + dropped by reason + in flight (the
accounting must close). ``--sigterm K`` times K SIGTERMs to a real ``eventclipd`` (mid-stream and
while the model loads), with ``--hog`` beside it when given.

    OMP_NUM_THREADS=1 python benchmarks/bench_daemon.py [--rates 50,100] [--seconds 20] [--minutes 10]
    python benchmarks/bench_daemon.py --rates 50 --seconds 60 --overload [--hog 2]
    python benchmarks/bench_daemon.py --sigterm 5 [--hog 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zmq

from eventclip.daemon.config import load_config
from eventclip.daemon.engine import ClassifierEngine
from eventclip.daemon.pipeline import Pipeline
from eventclip.daemon.publish import Publisher
from eventclip.events import EVENT_DTYPE, EventChunk, Geometry
from eventclip.frames.windows import make_windower
from eventclip.sensors.base import Source, SourceConfig

GEOMETRY = Geometry(1280, 720)
PROMPTS = ("classes: [car, pedestrian, bicycle, dog, truck, bus, tree, door, hand, face]\n"
           "anomaly: {normal: ['an empty street'], abnormal: ['a fire', 'a fight']}\n")
"""The prompts every daemon benchmark classifies against (10 classes + an anomaly pair)."""


class SyntheticConfig(SourceConfig):
    kind: str = "synthetic"
    rate_ev_s: float
    chunk_us: int = 1000
    seconds: float = 20.0


class SyntheticCamera(Source):
    """Uniform random events at ``rate_ev_s`` released in real time, ``chunk_us`` per chunk."""

    kind = "synthetic"
    Config = SyntheticConfig

    def __init__(self, config: SyntheticConfig) -> None:
        super().__init__(config)
        self._closed = threading.Event()
        rng = np.random.default_rng(0)
        n = max(4_000_000, int(config.rate_ev_s * config.chunk_us / 1e6))
        self._pool = np.empty(n, dtype=EVENT_DTYPE)
        self._pool["x"] = rng.integers(0, GEOMETRY.width, n)
        self._pool["y"] = rng.integers(0, GEOMETRY.height, n)
        self._pool["p"] = rng.integers(0, 2, n)
        self._pool_words = self._pool.view(np.int64)[::2].copy()  # word 0: x | y << 16 | p << 32
        self.late_chunks = 0

    def open(self) -> None:
        self.geometry, self.sensor_id = GEOMETRY, f"synthetic-{self.config.rate_ev_s / 1e6:g}Mevs"

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[EventChunk]:
        cfg = self.config
        per_chunk = int(round(cfg.rate_ev_s * cfg.chunk_us / 1e6))
        n_chunks = int(cfg.seconds * 1e6 / cfg.chunk_us)
        ramp = (np.arange(per_chunk, dtype=np.int64) * cfg.chunk_us) // per_chunk  # µs within a chunk
        start = time.monotonic()
        offset = 0
        for k in range(n_chunks):
            due = start + (k + 1) * cfg.chunk_us / 1e6
            wait = due - time.monotonic()
            if wait > 0:
                if self._closed.wait(wait):
                    return
            elif wait < -cfg.chunk_us / 1e6:
                self.late_chunks += 1
            if self._closed.is_set():
                return
            if offset + per_chunk > len(self._pool):
                offset = 0
            # Fill the 16-byte records as two int64 columns (x|y|p word, t): a structured
            # copy plus a strided t assignment made the camera itself the bottleneck.
            ev = np.empty(per_chunk, dtype=EVENT_DTYPE)
            raw = ev.view(np.int64).reshape(-1, 2)
            raw[:, 0] = self._pool_words[offset : offset + per_chunk]
            offset += per_chunk
            t0 = k * cfg.chunk_us
            np.add(ramp, t0, out=raw[:, 1])
            yield EventChunk(ev, GEOMETRY, t_end_us=t0 + cfg.chunk_us)


def cpu_model() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    return "unknown"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tiny_package(folder: Path) -> Path:
    from eventclip.exporters.onnx import export_onnx
    from eventclip.model.clip import create_eventclip

    cfg = {"embed_dim": 64, "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2}}
    path = create_eventclip(cfg).save_pretrained(folder / "tiny")
    export_onnx(path, check=False)
    return path


def run_daemon(package: Path, prompts: Path, backend: str, rate: float, seconds: float, window_us: int,
               chunk_us: int, settings: dict | None = None) -> dict:
    """One paced run through the daemon's pipeline, sized by the daemon's thread plan; ``settings``
    are extra daemon config fields (``max_age_ms``, ``max_pending_events``)."""
    from eventclip.daemon import threads
    from eventclip.stream import open_encoder

    cfg = load_config(None, {"sensor": "prophesee", "prompts": prompts, "window_us": window_us,
                             "publish": "tcp://127.0.0.1:*", "backend": backend, **(settings or {})})
    plan = threads.plan_threads(threads.allowed_cores(cfg.threads))
    restore_threads = threads.apply(plan)
    options = {"threads": plan.encoder} if backend in ("auto", "onnxruntime") else {}
    engine = ClassifierEngine(package, open_encoder(package, backend, **options), prompts)
    source = SyntheticCamera(SyntheticConfig(rate_ev_s=rate, seconds=seconds, chunk_us=chunk_us))
    source.open()
    engine.warm_up(source.geometry)
    publisher = Publisher(cfg.publish, source.sensor_id)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt_string(zmq.SUBSCRIBE, "eventclip/labels")
    sub.connect(publisher.endpoint)
    publisher.wait_for_subscribers(1, 5)
    latencies: list[float] = []
    arrivals: list[float] = []
    seqs: list[int] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            if sub.poll(100):
                msg = json.loads(sub.recv_multipart()[1])
                latencies.append(msg["latency_ms"])
                arrivals.append(time.monotonic())
                seqs.append(msg["seq"])

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    pipe = Pipeline(source, make_windower(window_us=window_us), engine, publisher, cfg, threads=plan.as_dict())
    rss, backlog = [rss_mb()], [0]
    t0 = time.monotonic()
    pipe.start()
    while pipe._stages[0].thread.is_alive():
        time.sleep(0.2)
        backlog.append(pipe.inbox.pending_events)
        if len(backlog) % 5 == 0:
            rss.append(rss_mb())
    elapsed = time.monotonic() - t0
    pipe.wait()
    time.sleep(0.3)
    stop.set()
    receiver.join(2)
    sub.close()
    publisher.close()
    rss.append(rss_mb())
    restore_threads()
    c = pipe.metrics.counters
    lat = np.asarray(latencies or [float("nan")])
    stats = pipe.last_stats
    return {
        "stats": stats, "budget_ms": pipe.max_age_ms, "bound_mb": memory_bound_mb(cfg, rate, window_us),
        "rss_peak": max(rss), "rss_start": rss[0], "plan": plan,
        "rate_target": rate, "rate_in": c.events_in / elapsed, "reader_lost": c.events_overflow,
        "late_chunks": source.late_chunks, "backlog_peak": max(backlog), "windows": c.windows_closed,
        "windows_s": c.windows_published / elapsed, "dropped": pipe.windows.dropped,
        "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
        "received": len(latencies), "gapless": seqs == list(range(len(seqs))),
        "rss": rss, "backend": engine.backend_name,
        "p99_by_10s": p99_by_interval(np.asarray(arrivals) - t0, lat, 10.0),
    }


def p99_by_interval(at_s: np.ndarray, lat_ms: np.ndarray, interval_s: float) -> list[float]:
    """p99 latency (ms) of the windows published in each ``interval_s`` of the run: shows whether
    the tail comes from start-up, from a few stalls, or all along."""
    if len(at_s) != len(lat_ms) or not len(at_s):
        return []
    slot = (at_s // interval_s).astype(int)
    return [float(np.percentile(lat_ms[slot == k], 99)) for k in range(slot.max() + 1) if np.any(slot == k)]


def memory_bound_mb(cfg, rate: float, window_us: int) -> float:
    """What the stream may hold beyond the model (MB), by configuration: the reader queue (16 bytes an
    event), the window queue (one 1280x720 uint32 count plane per window), the batch being turned into
    frames (its count planes stacked, and their float32 frames), and two open windows (the one filling
    and the one closing: their counts, and their events, which depend on the window length and the
    camera's rate)."""
    plane = GEOMETRY.width * GEOMETRY.height * 4
    return (cfg.max_pending_events * 16 + cfg.window_queue * plane + 2 * cfg.batch_size * plane
            + 2 * (plane + rate * window_us / 1e6 * 16)) / 2**20


def start_hogs(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy (a CPU-bound job sharing the machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for proc in hogs:
        proc.kill()
        proc.wait()


def overload_table(results: list[dict]) -> None:
    """The freshness / memory / accounting figures of each run (issue 18)."""
    print("| run | target Mev/s | achieved Mev/s | windows/s | age p50 ms | age p99 ms | budget ms | RSS start→peak MB "
          "(bound: start + MB) | windows dropped stale / incomplete / policy | events read | published | dropped by "
          "reason | in flight | read = published + dropped + in flight |")
    print("|---" * 14 + "|")
    for r in results:
        st = r["stats"]
        drops = st["drops"]
        by_reason = ", ".join(f"{k} {v:,}" for k, v in drops["events"].items() if v) or "none"
        dropped = sum(drops["events"].values())
        closes = st["events_total"] == st["events_published"] + dropped + st["events_in_flight"]
        print(f"| {r['label']} | {r['rate_target'] / 1e6:g} | {r['rate_in'] / 1e6:.1f} | {r['windows_s']:.1f} | "
              f"{r['p50']:.0f} | {r['p99']:.0f} | {r['budget_ms']:g} | {r['rss_start']:.0f}→{r['rss_peak']:.0f} "
              f"(+{r['bound_mb']:.0f}) | {drops['windows_stale']} / {drops['windows_incomplete']} / "
              f"{drops['windows_policy']} | {st['events_total']:,} | {st['events_published']:,} | {by_reason} | "
              f"{st['events_in_flight']:,} | {closes} |", flush=True)


def time_sigterm(package: Path, prompts: Path, backend: str, trials: int, src: Path | None) -> dict[str, list[float]]:
    """Seconds from SIGTERM to exit of a real ``eventclipd`` replaying a looped recording at real speed:
    mid-stream (3 s after ``ready``) and during start-up (just after ``starting: loading model``)."""
    from eventclip.data import sample_recording_path

    cfg = Path(tempfile.mkdtemp(prefix="bench-sigterm-")) / "loop.yaml"
    env = dict(os.environ)
    loop = "source: {kind: replay, loop: true}\n"
    if src is not None:
        env["PYTHONPATH"] = str(src)
        if "sensor_options" in (src / "eventclip" / "daemon" / "config.py").read_text():
            loop = "sensor_options: {loop: true}\n"  # a tree from before 'source:' (a baseline to compare with)
    cfg.write_text(loop)
    out: dict[str, list[float]] = {"mid-stream": [], "start-up": []}
    for _ in range(trials):
        for case, wait_for in (("mid-stream", "ready:"), ("start-up", "starting: loading model")):
            proc = subprocess.Popen([sys.executable, "-m", "eventclip.daemon.main", "--config", str(cfg), "--sensor",
                                     "replay", "--input", str(sample_recording_path()), "--prompts", str(prompts),
                                     "--model", str(package), "--backend", backend, "--publish", "tcp://127.0.0.1:*",
                                     "--log-format", "text", "--log-level", "INFO"],
                                    env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
            for line in proc.stderr:
                if wait_for in line or (case == "start-up" and "loaded on" in line):
                    break
            if case == "mid-stream":
                time.sleep(3.0)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out[case].append(time.monotonic() - t0)
            proc.stderr.close()
    return out


def run_sequential(package: Path, prompts: Path, backend: str, rate: float, seconds: float, window_us: int) -> dict:
    """Baseline: the same stream, windowed and classified in one thread (the classify path), unpaced."""
    from eventclip.heads.classifier import build_classifier
    from eventclip.heads.prompts import load_prompts
    from eventclip.stream import open_encoder

    clf = build_classifier(package, open_encoder(package, backend), load_prompts(prompts))
    source = SyntheticCamera(SyntheticConfig(rate_ev_s=rate, seconds=seconds, chunk_us=window_us))
    source.open()
    from eventclip.frames.windows import Window

    clf([Window(0, window_us)], GEOMETRY)  # warm-up, as the daemon does before READY
    windower = make_windower(window_us=window_us)
    n = 0
    per_window = []
    t0 = time.perf_counter()
    cfg = source.config
    per_chunk = int(round(cfg.rate_ev_s * cfg.chunk_us / 1e6))
    for k in range(int(seconds * 1e6 / window_us)):
        ev = source._pool[:per_chunk].copy()
        ev["t"] = k * window_us + (np.arange(per_chunk, dtype=np.int64) * window_us) // per_chunk
        for w in windower.push(ev, (k + 1) * window_us):
            t = time.perf_counter()
            clf([w], GEOMETRY)
            per_window.append((time.perf_counter() - t) * 1000)
        n += len(ev)
    elapsed = time.perf_counter() - t0
    return {"rate": n / elapsed, "p50": statistics.median(per_window), "windows_s": len(per_window) / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="50,100", help="input rates to try, Mev/s (comma-separated)")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration per rate")
    ap.add_argument("--minutes", type=float, help="long mode: run the first rate this many minutes (memory)")
    ap.add_argument("--window-us", type=int, default=50_000, help="window length (50 ms = 20 windows/s)")
    ap.add_argument("--chunk-us", type=int, default=1000, help="host time between camera chunks")
    ap.add_argument("--model", type=Path, help="model package (default: the bundled default model)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--overload", action="store_true", help="run the first rate and twice it (freshness table)")
    ap.add_argument("--hog", type=int, default=0, help="busy-loop processes running beside the daemon")
    ap.add_argument("--max-age-ms", type=float, help="freshness budget (default: the daemon's)")
    ap.add_argument("--max-pending-events", type=int, help="reader queue bound (default: the daemon's)")
    ap.add_argument("--sigterm", type=int, default=0, help="time this many SIGTERMs to a real eventclipd instead")
    ap.add_argument("--daemon-src", type=Path, help="with --sigterm: the eventclip source tree the daemon runs")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    os.environ.setdefault("EVENTCLIP_CACHE", str(tmp / "cache"))
    model_note = ""
    package = args.model
    if package is None:
        try:
            from eventclip.data import default_model_path

            package = default_model_path()
            model_note = "bundled default model"
        except Exception as exc:  # noqa: BLE001 - fall back, and say so in the table
            package = tiny_package(tmp)
            model_note = f"NOT the default model ({exc.__class__.__name__}): random-weight 64-px ViT (2 layers)"
    else:
        model_note = str(package)
    prompts = tmp / "prompts.yaml"
    prompts.write_text(PROMPTS)
    rates = [float(r) * 1e6 for r in args.rates.split(",")]
    seconds = args.minutes * 60 if args.minutes else args.seconds
    if args.minutes:
        rates = rates[:1]

    print(f"model: {model_note} ({package})")
    print(f"CPU: {cpu_model()}, load average at start {os.getloadavg()[0]:.2f}, {args.hog} hog process(es)")
    if args.sigterm:
        hogs = start_hogs(args.hog)
        try:
            times = time_sigterm(package, prompts, args.backend, args.sigterm, args.daemon_src)
        finally:
            stop_hogs(hogs)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        print("| SIGTERM | trials | median s | max s |")
        print("|---|---|---|---|")
        for case, values in times.items():
            print(f"| {case} | {len(values)} | {statistics.median(values):.2f} | {max(values):.2f} |")
        return
    if args.overload or args.hog:
        settings = {k: v for k, v in (("max_age_ms", args.max_age_ms), ("max_pending_events",
                                                                        args.max_pending_events)) if v}
        base = float(args.rates.split(",")[0]) * 1e6
        runs = [(f"{base / 1e6:g} Mev/s", base)] + ([(f"2x: {2 * base / 1e6:g} Mev/s", 2 * base)] if args.overload
                                                      else [])
        hogs = start_hogs(args.hog)
        results = []
        try:
            for label, rate in runs:
                r = run_daemon(package, prompts, args.backend, rate, args.seconds, args.window_us, args.chunk_us,
                               settings)
                r["label"] = label + (f" + {args.hog} hogs" if args.hog else "")
                results.append(r)
        finally:
            stop_hogs(hogs)
        print(f"thread plan: {results[0]['plan']}")
        print(f"load average at end {os.getloadavg()[0]:.2f}")
        overload_table(results)
        return
    print(f"window {args.window_us} µs ({1e6 / args.window_us:g} windows/s), chunks every {args.chunk_us} µs, "
          f"{seconds:g} s per rate, sensor {GEOMETRY}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    header = ("| input target Mev/s | achieved Mev/s | reader loss (events) | peak backlog (events) | late chunks "
              "| windows/s | window drops | latency p50 ms | latency p99 ms | gapless | RSS start→end MB | backend |")
    print(header)
    print("|---" * 12 + "|")
    results = []
    for rate in rates:
        r = run_daemon(package, prompts, args.backend, rate, seconds, args.window_us, args.chunk_us)
        results.append(r)
        print(f"| {rate / 1e6:g} | {r['rate_in'] / 1e6:.1f} | {r['reader_lost']} | {r['backlog_peak']:,} | "
              f"{r['late_chunks']} | {r['windows_s']:.1f} | {r['dropped']} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['gapless']} | {r['rss'][0]:.0f}→{r['rss'][-1]:.0f} (max {max(r['rss']):.0f}) | {r['backend']} |",
              flush=True)
    sustained = [r for r in results if r["rate_in"] >= 0.95 * r["rate_target"] and r["dropped"] == 0
                 and r["reader_lost"] == 0] or results[:1]
    best = max(sustained, key=lambda r: r["rate_in"])
    seq = run_sequential(package, prompts, args.backend, best["rate_target"], min(seconds, 10.0), args.window_us)
    ours = best["rate_in"]
    print()
    print("| path | Mev/s | windows/s | per-window ms (p50) | ratio to ours |")
    print("|---|---|---|---|---|")
    print(f"| ours: eventclipd pipeline, highest rate sustained ({best['rate_target'] / 1e6:g} Mev/s paced) | "
          f"{ours / 1e6:.1f} | {best['windows_s']:.1f} | {best['p50']:.1f} (close→publish) | 1.00 |")
    print(f"| sequential classify path, one thread, unpaced, same window size | {seq['rate'] / 1e6:.1f} | "
          f"{seq['windows_s']:.1f} | {seq['p50']:.1f} (frames+encode+heads) | {seq['rate'] / ours:.2f} |")
    for r in results:
        print(f"p99 ms per 10 s at {r['rate_target'] / 1e6:g} Mev/s:", " ".join(f"{v:.0f}" for v in r["p99_by_10s"]))
    if args.minutes:
        print("\nRSS samples (MB, every ~1 s):", " ".join(f"{m:.0f}" for m in results[0]["rss"]))


if __name__ == "__main__":
    main()
