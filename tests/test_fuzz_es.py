"""Fuzz the Event Stream decoder with mutated copies of the real POKER-DVS sample (tests/_fuzz_others.py)."""

from __future__ import annotations

import pytest

from eventclip.io.es import EsReader
from tests._fuzz_others import CI_CASES, SEED, SLOW_CASES, run_fuzz
from tests.conftest import recording


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    data = recording("pokerdvs_trcl0_dvs.es").read_bytes()
    return [data[:3000], data]


def test_fuzz_es_ci(tmp_path, seeds):
    counts = run_fuzz(tmp_path, EsReader, seeds, CI_CASES, ".es", block_bytes=997)
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
def test_fuzz_es_long(tmp_path, seeds):
    counts = run_fuzz(tmp_path, EsReader, seeds, SLOW_CASES, ".es", seed=SEED + 2, block_bytes=997)
    assert counts["ok"] > 0 and counts["error"] > 0, counts
