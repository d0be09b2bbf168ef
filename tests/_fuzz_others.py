"""Mutations and the invariant check shared by the fuzz tests of the iniVation/dataset/plain readers.

A fuzzed input must end in valid events (EVENT_DTYPE, inside the reader's geometry, polarity 0/1,
time non-decreasing) or an EventFormatError; anything else (another exception, a crash) fails.
CI runs ``EVENTCLIP_FUZZ_N`` cases per decoder (small by default); ``-m slow`` runs many more.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE
from eventclip.io.errors import EventFormatError

CI_CASES = int(os.environ.get("EVENTCLIP_FUZZ_N_CI", "600"))
SLOW_CASES = int(os.environ.get("EVENTCLIP_FUZZ_N", "20000"))
SEED = int(os.environ.get("EVENTCLIP_FUZZ_SEED", "20260529"))


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """One random corruption: bit flips, truncation, splice with another file, overwrite, insert/delete."""
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0 and buf:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del buf[rng.randrange(len(buf) + 1):]
    elif kind == 2 and others:
        other = rng.choice(others)
        a, b = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
        buf = bytearray(other[:b] + bytes(buf[a:])) if rng.random() < 0.5 else bytearray(bytes(buf[:a]) + other[b:])
    elif kind == 3 and buf:
        i = rng.randrange(len(buf))
        buf[i:i + rng.randint(1, 16)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 4 and buf:
        # Overwrite an aligned 4-byte word with an extreme value (sizes, offsets, counts).
        i = rng.randrange(len(buf)) & ~3
        buf[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00"])
    else:
        i = rng.randrange(len(buf) + 1)
        j = min(len(buf), i + rng.randint(1, 7))
        if rng.random() < 0.5:
            buf[i:i] = buf[i:j]
        else:
            del buf[i:j]
    return bytes(buf)


def check_decode(reader_cls, path: Path, **kwargs) -> str:
    """Decode ``path`` fully; 'ok' when every block is valid, 'error' on EventFormatError."""
    try:
        with reader_cls(path, **kwargs) as reader:
            last = None
            for block in reader:
                assert block.dtype == EVENT_DTYPE, block.dtype
                if len(block) == 0:
                    continue
                g = reader.geometry
                assert (block["x"] < g.width).all() and (block["y"] < g.height).all()
                assert np.isin(block["p"], (0, 1)).all()
                t = block["t"]
                assert (t[1:] >= t[:-1]).all() and (last is None or t[0] >= last)
                last = int(t[-1])
        return "ok"
    except EventFormatError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return "error"


def run_fuzz(tmp_path: Path, reader_cls, seeds: list[bytes], cases: int, suffix: str, seed: int = SEED,
             **kwargs) -> dict[str, int]:
    """Mutate the seed files ``cases`` times and check each; returns the outcome counts."""
    rng = random.Random(seed)
    counts = {"ok": 0, "error": 0}
    target = tmp_path / f"fuzz{suffix}"
    for k in range(cases):
        data = mutate(rng, rng.choice(seeds), seeds)
        if rng.random() < 0.3:
            data = mutate(rng, data, seeds)
        target.write_bytes(data)
        try:
            counts[check_decode(reader_cls, target, **kwargs)] += 1
        except BaseException as exc:
            keep = tmp_path / f"failing_case_{k}{suffix}"
            keep.write_bytes(data)
            raise AssertionError(f"case {k} (seed {seed}) kept at {keep}: {type(exc).__name__}: {exc}") from exc
    return counts
