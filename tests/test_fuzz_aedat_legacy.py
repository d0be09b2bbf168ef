"""Fuzz the AEDAT 2.0 and 3.1 readers with mutated copies of spec-built files (no real sample exists here)."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import make_events
from eventclip.io.aedat_legacy import Aedat2Reader, Aedat31Reader
from tests._fuzz_others import CI_CASES, SEED, SLOW_CASES, run_fuzz
from tests.test_io_aedat_legacy import AEDAT2_HEADER, AEDAT31_HEADER, aedat2_body, aedat31_packet


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    rng = np.random.default_rng(4)
    return make_events(rng.integers(0, 128, 300), rng.integers(0, 128, 300), rng.integers(0, 2, 300),
                       np.cumsum(rng.integers(0, 60, 300)))


def test_fuzz_aedat2_ci(tmp_path, events):
    seeds = [AEDAT2_HEADER + aedat2_body(events), AEDAT2_HEADER + aedat2_body(events[:20], special_at=(3,))]
    counts = run_fuzz(tmp_path, Aedat2Reader, seeds, CI_CASES // 2, ".aedat", block_events=50)
    assert counts["ok"] > 0 and counts["error"] > 0, counts


def test_fuzz_aedat31_ci(tmp_path, events):
    seeds = [AEDAT31_HEADER + aedat31_packet(events[:100]) + aedat31_packet(events[100:], overflow=0),
             AEDAT31_HEADER + aedat31_packet(events[:10], valid=np.arange(10) % 3 > 0, capacity_extra=2)]
    counts = run_fuzz(tmp_path, Aedat31Reader, seeds, CI_CASES // 2, ".aedat")
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
def test_fuzz_aedat_legacy_long(tmp_path, events):
    seeds2 = [AEDAT2_HEADER + aedat2_body(events)]
    seeds31 = [AEDAT31_HEADER + aedat31_packet(events[:100]) + aedat31_packet(events[100:])]
    run_fuzz(tmp_path, Aedat2Reader, seeds2, SLOW_CASES // 2, ".aedat", seed=SEED + 5, block_events=50)
    run_fuzz(tmp_path, Aedat31Reader, seeds31, SLOW_CASES // 2, ".aedat", seed=SEED + 6)
