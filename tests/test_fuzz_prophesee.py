"""Fuzz the Prophesee decoders (EVT 2.0, 2.1, 3.0, DAT, HDF5) with mutated copies of real files.

Every input must end in valid events (inside the geometry, polarity 0/1, time non-decreasing) or
an EventFormatError: no crash, no hang, no other exception. CI runs a few thousand cases in total;
``pytest -m slow tests/test_fuzz_prophesee.py`` runs many more (EVENTCLIP_FUZZ_N per decoder,
default 20000) with a different seed each run (EVENTCLIP_FUZZ_SEED to replay one).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from eventclip.events import EVENT_DTYPE
from eventclip.io import EventFormatError, detect_format, open_events, read_events
from tests.conftest import recording

SEEDS = {
    "evt2": ("prophesee_evt2_sparklers_gen3_640x480.raw", 3000),
    "evt3": ("prophesee_evt3_driving_gen41_1280x720.raw", 3000),
    "dat": ("ncars_tonic_sample.dat", 2000),
}
MY_FORMATS = {"evt2", "evt21", "evt3", "dat", "hdf5"}
HEADER_LINES = [b"% evt 2.0\n", b"% evt 3.0\n", b"% evt 2.1\n", b"% format EVT21;endianness=legacy\n",
                b"% geometry 1x1\n", b"% geometry 2048x2048\n", b"% format EVT3;height=0;width=5\n", b"% end\n",
                b"% Width 3\n", b"% Height 99999\n", b"% Data file containing CD events.\n", b"% \xff\xfe\n"]


def _seed_bytes(name: str, body_bytes: int) -> bytes:
    data = recording(name).read_bytes()
    hdr_end = 0
    while data[hdr_end:hdr_end + 1] == b"%":
        hdr_end = data.index(b"\n", hdr_end) + 1
    return data[: hdr_end + 2 + body_bytes]


def _evt21_seed() -> bytes:
    rng = np.random.default_rng(7)
    words = [(0x8 << 60) | (1000 << 32)]
    for k in range(300):
        typ = int(rng.integers(0, 2))
        words.append((typ << 60) | ((k % 50) << 54) | (int(rng.integers(0, 40)) * 32 << 43)
                     | (int(rng.integers(0, 720)) << 32) | int(rng.integers(0, 1 << 32)))
        if k % 50 == 49:
            words.append((0x8 << 60) | ((1001 + k) << 32))
    header = b"% evt 2.1\n% format EVT21;endianness=little;height=720;width=1280\n% end\n"
    return header + np.array(words, "<u8").tobytes()


def _mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0 and buf:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del buf[rng.randrange(len(buf) + 1):]
    elif kind == 2:  # splice another file's header onto this body, or this header onto another body
        other = rng.choice(others)
        cut_a, cut_b = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
        buf = (bytearray(other[:cut_b] + bytes(buf[cut_a:])) if rng.random() < 0.5
               else bytearray(bytes(buf[:cut_a]) + other[cut_b:]))
    elif kind == 3:  # header lines inserted at the start
        buf = bytearray(b"".join(rng.choices(HEADER_LINES, k=rng.randint(1, 3))) + bytes(buf))
    elif kind == 4 and buf:  # random bytes overwritten
        i = rng.randrange(len(buf))
        buf[i:i + rng.randint(1, 16)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:  # bytes deleted or duplicated (word misalignment)
        i = rng.randrange(len(buf) + 1)
        j = min(len(buf), i + rng.randint(1, 7))
        buf[i:i] = buf[i:j] if rng.random() < 0.5 else b""
        if rng.random() < 0.5:
            del buf[i:j]
    return bytes(buf)


def _check_one(path, fmt: str | None, whole: bool = False) -> str:
    """Decode ``path`` (streaming, or ``whole`` with read_events); return 'ok' or 'error'.

    Anything else (another exception, invalid events) fails the test.
    """
    try:
        if fmt is None:
            fmt = detect_format(path).name
            if fmt not in MY_FORMATS:
                return "other"
        with open_events(path, format=fmt) as stream:
            w, h = stream.geometry.width, stream.geometry.height
            last = None
            chunks = [read_events(path, format=fmt).events] if whole else (c.events for c in stream)
            for ev in chunks:
                if not len(ev):
                    continue
                assert ev["x"].max() < w and ev["y"].max() < h, "event outside geometry"
                assert set(np.unique(ev["p"]).tolist()) <= {0, 1}, "bad polarity"
                t = ev["t"]
                assert np.all(np.diff(t) >= 0) and (last is None or t[0] >= last), "time not ordered"
                last = int(t[-1])
        return "ok"
    except EventFormatError:
        return "error"


def _fuzz(tmp_path, fmt: str, seed_data: bytes, n: int, seed: int, others: list[bytes]) -> dict:
    rng = random.Random(seed)
    counts = {"ok": 0, "error": 0, "other": 0}
    path = tmp_path / ("case.dat" if fmt == "dat" else "case.raw")
    for i in range(n):
        data = _mutate(rng, seed_data, others)
        path.write_bytes(data)
        detect = rng.random() < 0.3
        try:
            counts[_check_one(path, None if detect else fmt, whole=rng.random() < 0.5)] += 1
        except Exception as exc:  # pragma: no cover - the failure message is the point
            bad = tmp_path / f"failing_{fmt}_{i}.bin"
            bad.write_bytes(data)
            raise AssertionError(f"{fmt} case {i} (seed {seed}) raised {type(exc).__name__}: {exc}; "
                                 f"input saved at {bad}") from exc
    return counts


def _seeds() -> dict[str, bytes]:
    out = {fmt: _seed_bytes(name, size) for fmt, (name, size) in SEEDS.items()}
    out["evt21"] = _evt21_seed()
    return out


CI_CASES = {"evt2": 900, "evt3": 900, "evt21": 600, "dat": 900}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", sorted(CI_CASES))
def test_fuzz_ci(tmp_path, fmt):
    seeds = _seeds()
    counts = _fuzz(tmp_path, fmt, seeds[fmt], CI_CASES[fmt], 1234, list(seeds.values()))
    assert counts["ok"] > 0 and counts["error"] > 0, counts  # both outcomes are exercised


@pytest.mark.timeout(120)
@pytest.mark.parametrize("layout", ["metavision", "packed"])
def test_fuzz_hdf5_ci(tmp_path, layout):
    """HDF5: mutate a small file in Metavision's 16-byte layout (read straight into our arrays) or a
    packed 14-byte one (converted); h5py must report damage as an EventFormatError."""
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "seed.hdf5"
    rng = np.random.default_rng(3)
    n = 300
    dtype = EVENT_DTYPE if layout == "metavision" else [("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")]
    ev = np.zeros(n, dtype=dtype)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 64, n), rng.integers(0, 48, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 10**6, n))
    with h5py.File(src, "w") as f:
        f.attrs["geometry"] = "64x48"
        f.create_group("CD").create_dataset("events", data=ev)
    data = src.read_bytes()
    r = random.Random(99)
    path = tmp_path / "case.hdf5"
    counts = {"ok": 0, "error": 0, "other": 0}
    for _ in range(800):
        buf = bytearray(data)
        if r.random() < 0.5:
            for _ in range(r.randint(1, 4)):
                i = r.randrange(len(buf))
                buf[i] ^= 1 << r.randrange(8)
        else:
            del buf[r.randrange(len(buf)):]
        path.write_bytes(bytes(buf))
        counts[_check_one(path, "hdf5", whole=r.random() < 0.5)] += 1
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("fmt", sorted(CI_CASES))
def test_fuzz_long(tmp_path, fmt):
    n = int(os.environ.get("EVENTCLIP_FUZZ_N", "20000"))
    seed = int(os.environ.get("EVENTCLIP_FUZZ_SEED", str(random.randrange(1 << 30))))
    seeds = _seeds()
    print(f"fuzz {fmt}: {n} cases, EVENTCLIP_FUZZ_SEED={seed}")
    _fuzz(tmp_path, fmt, seeds[fmt], n, seed, list(seeds.values()))
