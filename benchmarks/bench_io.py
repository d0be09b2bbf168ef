"""Decode speed of eventclip's Prophesee readers vs the Metavision SDK, faery, evt3, expelliarmus, h5py.

Generates once (cached under --cache, default out/bench_io) a file of at least --events events per
format by tiling a real recording in time (the recordings beside the project) or, without them,
from synthetic events; then decodes each file with every decoder, --repeat times round-robin, in this
one process, and prints median seconds, Mev/s and our speed relative to each peer. Never asserts.

Two modes, compared like with like: "whole" decoders return the whole file as arrays; "stream"
decoders hand out chunks of ~1 M events that the consumer drops (bounded memory). Our EVT rows run
with the default thread count (one per CPU) and with one thread (``DECODE_THREADS = 1``).

The Metavision SDK (OpenEB), the vendor's own decoder and so the speed anchor for Prophesee formats,
adds its rows on EVT 2.0 / 3.0 when it imports (``source .ci/openeb.sh`` first): ``EventsIterator``,
SDK 5 ``Camera`` + ``CameraStreamSlicer`` (real-time playback off) and ``RawReader``, all by 1 M
events, time shift off.

    source .ci/openeb.sh && python benchmarks/bench_io.py --events 20000000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("EVENTCLIP_RECORDINGS", ROOT.parent / "shared" / "data" / "recordings"))
SOURCES = {"evt3": "prophesee_evt3_driving_gen41_1280x720.raw", "evt2": "prophesee_evt2_sparklers_gen3_640x480.raw"}


def _source_events(fmt: str):
    from eventclip.events import Geometry, make_events
    from eventclip.io import read_events

    name = SOURCES["evt3" if fmt in ("evt3", "hdf5") else "evt2"]
    path = RECORDINGS / name
    if path.is_file():
        chunk = read_events(path)
        return chunk.events, chunk.geometry, f"tiled {name}"
    rng = np.random.default_rng(0)
    n = 500_000
    geo = Geometry(1280, 720)
    ev = make_events(rng.integers(0, geo.width, n), rng.integers(0, geo.height, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 50_000, n)))
    return ev, geo, "synthetic uniform events"


def make_file(fmt: str, n_events: int, cache: Path) -> tuple[Path, str]:
    """The cached benchmark file for ``fmt`` (created on first use) and a note on where it came from."""
    from eventclip.events import EVENT_DTYPE
    from eventclip.io import open_writer

    suffix = {"evt3": ".raw", "evt2": ".raw", "dat": ".dat", "hdf5": ".hdf5"}[fmt]
    # hdf5: Metavision's 16-byte EventCD layout, as real files have. evt3: vectors as whole 32-column
    # groups; files cached before that writer fix hold lone VECT_12 words, which the SDK misreads.
    layout = {"hdf5": "_metavision", "evt3": "_groups32"}.get(fmt, "")
    path = cache / f"bench_{fmt}_{n_events}{layout}{suffix}"
    src, geo, note = _source_events(fmt)
    if path.exists():
        return path, note
    cache.mkdir(parents=True, exist_ok=True)
    span = int(src["t"][-1] - src["t"][0]) + 1
    reps = -(-n_events // len(src))
    tmp = path.with_suffix(".tmp")
    if fmt == "hdf5":
        import h5py

        with h5py.File(tmp, "w") as f:
            f.attrs["geometry"] = f"{geo.width}x{geo.height}"
            ds = f.create_group("CD").create_dataset(
                "events", shape=(reps * len(src),), dtype=EVENT_DTYPE, chunks=(1 << 16,))
            for k in range(reps):
                part = src.copy()
                part["t"] += k * span
                ds[k * len(src):(k + 1) * len(src)] = part
    else:
        with open_writer(tmp, geo, format=fmt) as w:
            for k in range(reps):
                part = src.copy()
                part["t"] += k * span
                w.write(part)
    os.replace(tmp, path)
    return path, note


OURS = {"whole": "eventclip read_events", "stream": "eventclip open_events (stream)"}
STREAM_EVENTS = 1_000_000
"""Events per chunk asked of peers that chunk by event count (about our EVT 3.0 block)."""
STREAM_BYTES = 2 << 20
"""Bytes per batch asked of peers that chunk by file bytes (our BLOCK_BYTES)."""


def _threads(n: int | None, fn):
    """``fn`` run with the RAW readers' DECODE_THREADS set to ``n`` (None: the default, one per CPU)."""
    import eventclip.io.prophesee_raw as raw

    def run(p):
        saved, raw.DECODE_THREADS = raw.DECODE_THREADS, n
        try:
            return fn(p)
        finally:
            raw.DECODE_THREADS = saved

    return run


def _stream_floors(fmt: str) -> dict:
    """Rows for what a stream must do besides decoding, for EVT 3.0 / 2.0 (see ``decoders``).

    "read": fault the file's words in through a fresh map (a copy out of the page cache costs about
    the same) and count each block's events, on one thread. "read and write": the data movement
    alone of any stream that hands out our 16-byte events: every thread takes an equal share of the
    blocks, reads and counts its words that way and writes that many events into a reused output
    block, with no decoding. No decoder's stream on this machine can beat the second row."""
    from concurrent.futures import ThreadPoolExecutor

    from eventclip.events import EVENT_DTYPE
    from eventclip.io import _evt_kernels as K
    from eventclip.io.prophesee_raw import BLOCK_BYTES, Evt2Reader, Evt3Reader, decode_threads

    reader, count = (Evt3Reader, K.count_evt3) if fmt == "evt3" else (Evt2Reader, K.count_evt2)

    def blocks(p):
        r = reader(p)
        start, n_words, _ = r._layout()
        words = np.memmap(p, dtype=r.word_dtype, mode="r", offset=start, shape=(n_words,))
        size = BLOCK_BYTES // r.word_dtype.itemsize
        return [words[i:i + size] for i in range(0, n_words, size)]

    def read(p):
        return sum(count(b) for b in blocks(p))

    threads = decode_threads()
    outputs = [np.zeros(BLOCK_BYTES * 2, dtype=EVENT_DTYPE).view(np.int64) for _ in range(threads)]
    pool = ThreadPoolExecutor(threads)

    def read_and_write(p):
        todo = blocks(p)

        def share(k):
            n = 0
            for b in todo[k::threads]:
                c = count(b)
                outputs[k][:2 * c].fill(k)
                n += c
            return n

        return sum(pool.map(share, range(threads)))

    return {"floor: map the words, count them in blocks (no decoding)": ("stream", read),
            f"floor: {threads} threads map and count words, write 16-byte events (no decoding)":
                ("stream", read_and_write)}


def _sdk_decoders() -> dict:
    """The Metavision SDK's three Python routes over a RAW file, each in chunks of ``STREAM_EVENTS``, with
    the SDK's time shift off (as the tests compare them); empty when the SDK does not import."""
    try:
        import metavision_sdk_stream as stream
        from metavision_core.event_io import EventsIterator, RawReader
    except ImportError:
        return {}

    def events_iterator(p):
        it = EventsIterator(str(p), mode="n_events", n_events=STREAM_EVENTS, do_time_shifting=False)
        return sum(len(ev) for ev in it)

    def camera_slicer(p):
        hints = stream.FileConfigHints().time_shift(False).real_time_playback(False)  # it plays in real time by default
        camera = stream.Camera.from_file(str(p), hints)
        slicer = stream.CameraStreamSlicer(camera.move(), stream.SliceCondition.make_n_events(STREAM_EVENTS))
        return sum(piece.n_events for piece in slicer)

    def raw_reader(p):
        reader = RawReader(str(p), max_events=4 * STREAM_EVENTS, do_time_shifting=False)  # room for a decoded batch
        n = 0
        while not reader.is_done():
            n += len(reader.load_n_events(STREAM_EVENTS))
        return n

    return {"Metavision SDK EventsIterator (1 M events)": ("stream", events_iterator),
            "Metavision SDK Camera + CameraStreamSlicer (1 M events)": ("stream", camera_slicer),
            "Metavision SDK RawReader load_n_events (1 M)": ("stream", raw_reader)}


def decoders(fmt: str, path: Path) -> dict:
    """name -> (mode, function(path) -> number of events decoded); mode is "whole" or "stream".

    For EVT 3.0 / 2.0 a floor row allocates and writes the 16-byte output once without decoding:
    page faults plus one write of the bytes, which no whole-file decoder producing this layout can beat;
    two stream floor rows time reading the words, and reading them plus writing the output (see
    ``_stream_floors``).
    """
    from eventclip.io import open_events, read_events

    def whole(p):
        return len(read_events(p).events)

    def stream(p):
        return sum(len(c) for c in open_events(p))

    out = {OURS["whole"]: ("whole", whole), OURS["stream"]: ("stream", stream)}
    if fmt in ("evt3", "evt2"):
        out[OURS["whole"] + ", 1 thread"] = ("whole", _threads(1, whole))
        out[OURS["stream"] + ", 1 thread"] = ("stream", _threads(1, stream))
    try:
        import faery

        if fmt in ("evt2", "evt3", "dat"):
            out["faery"] = ("whole", lambda p: len(np.concatenate(list(faery.events_stream_from_file(p)))))
            out["faery (stream)"] = ("stream", lambda p: sum(len(c) for c in faery.events_stream_from_file(p)))
    except ImportError:
        pass
    try:
        import evt3

        if fmt == "evt3":
            out["evt3"] = ("whole", lambda p: len(evt3.decode_file(str(p)).x))
            out["evt3 decode_file_batches (2 MiB)"] = (
                "stream", lambda p: sum(len(b.x) for b in evt3.decode_file_batches(str(p), STREAM_BYTES)))
    except ImportError:
        pass
    try:
        import expelliarmus

        if fmt in ("evt2", "evt3", "dat"):
            out["expelliarmus"] = ("whole", lambda p: len(expelliarmus.Wizard(encoding=fmt, fpath=p).read()))
            out["expelliarmus read_chunk (1 M events)"] = (
                "stream", lambda p: sum(len(c) for c in expelliarmus.Wizard(
                    encoding=fmt, fpath=p, chunk_size=STREAM_EVENTS).read_chunk()))
    except ImportError:
        pass
    if fmt in ("evt3", "evt2"):
        from eventclip.events import EVENT_DTYPE

        out.update(_sdk_decoders())

        n_out = len(read_events(path).events)

        def floor(p):
            out = np.empty(n_out, dtype=EVENT_DTYPE)
            out.view(np.int64).fill(0)
            return len(out)

        out["floor: new 16-byte output, written once (no decoding)"] = ("whole", floor)
        out.update(_stream_floors(fmt))
    if fmt == "hdf5":
        import h5py

        def h5(p):
            with h5py.File(p, "r") as f:
                return len(f["CD/events"][()])

        out["h5py (plain dataset read)"] = ("whole", h5)
    return out


def run(formats: list[str], n_events: int, repeat: int, cache: Path) -> None:
    print(f"# eventclip I/O benchmark: {n_events:,} events per file, median of {repeat}; "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, load average at start "
          f"{os.getloadavg()[0]:.2f}")
    rows = []
    for fmt in formats:
        path, note = make_file(fmt, n_events, cache)
        modes = decoders(fmt, path)
        fns = {name: fn for name, (_, fn) in modes.items()}
        for fn in fns.values():
            fn(path)  # warm-up: numba cache load, page cache, lazy imports
        times: dict[str, list[float]] = {name: [] for name in fns}
        counts: dict[str, int] = {}
        for _ in range(repeat):  # round-robin, so load changes on a shared machine hit every decoder alike
            for name, fn in fns.items():
                t0 = time.perf_counter()
                counts[name] = fn(path)
                times[name].append(time.perf_counter() - t0)
        results = {name: (statistics.median(times[name]), counts[name]) for name in fns}
        for name, (sec, n) in results.items():
            mode = modes[name][0]
            rows.append((fmt, mode, name, n, sec, n / sec / 1e6, sec / results[OURS[mode]][0]))
        print(f"# {fmt}: {path.name} ({path.stat().st_size / 2**20:.0f} MiB, {note})")
    print()
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    print()
    print("| format | mode | decoder | events | median s | Mev/s | eventclip speed-up (this row's s / our default "
          "s, same mode) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for fmt, mode, name, n, sec, mev, ratio in rows:
        print(f"| {fmt} | {mode} | {name} | {n:,} | {sec:.3f} | {mev:.1f} | {ratio:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000_000, help="events per generated file (default 20M)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per decoder (median reported)")
    ap.add_argument("--formats", default="evt3,evt2,dat,hdf5", help="comma list of evt3, evt2, dat, hdf5")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "bench_io", help="where generated files are kept")
    args = ap.parse_args()
    run([f.strip() for f in args.formats.split(",") if f.strip()], args.events, args.repeat, args.cache)


if __name__ == "__main__":
    main()
