"""Fuzz the npy, npz and csv readers with mutated copies of files our writers produced (tests/_fuzz_others.py)."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.io.plain import CsvReader, CsvWriter, NpyReader, NpyWriter, NpzReader, NpzWriter
from tests._fuzz_others import CI_CASES, SEED, SLOW_CASES, run_fuzz

CASES = {"npy": (NpyWriter, NpyReader), "npz": (NpzWriter, NpzReader), "csv": (CsvWriter, CsvReader)}
GEOMETRY = Geometry(64, 48)


def _seeds(tmp_path, fmt) -> list[bytes]:
    rng = np.random.default_rng(9)
    ev = make_events(rng.integers(0, 64, 200), rng.integers(0, 48, 200), rng.integers(0, 2, 200),
                     np.cumsum(rng.integers(0, 1000, 200)))
    out = []
    for k, part in enumerate((ev, ev[:5])):
        path = tmp_path / f"seed{k}.{fmt}"
        with CASES[fmt][0](path, GEOMETRY) as writer:
            writer.write(part)
        out.append(path.read_bytes())
    return out


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_fuzz_plain_ci(tmp_path, fmt):
    kwargs = {"block_bytes": 512} if fmt == "csv" else {"block_events": 64}
    # The geometry is given: the sidecar/comment may be fuzzed away, which is a GeometryError case of its own.
    counts = run_fuzz(tmp_path, CASES[fmt][1], _seeds(tmp_path, fmt), CI_CASES // 3, f".{fmt}",
                      geometry=GEOMETRY, **kwargs)
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(CASES))
def test_fuzz_plain_long(tmp_path, fmt):
    run_fuzz(tmp_path, CASES[fmt][1], _seeds(tmp_path, fmt), SLOW_CASES // 3, f".{fmt}", seed=SEED + 7,
             geometry=GEOMETRY)
