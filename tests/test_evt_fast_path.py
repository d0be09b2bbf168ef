"""The EVT 3.0 and EVT 2.0 kernels' check-once runs against the plain-Python references.

Why a separate test: the kernels decode runs of plain words (EVT 3.0: ADDR_Y/ADDR_X/VECT_BASE_X/
VECT_12/TIME_LOW; EVT 2.0: CD words) with their checks OR-ed together and undo the run when the check
fails afterwards. Uniform random words (the other random
test) almost never make such runs, so these streams are mostly valid (small coordinates, rising
time) with errors (outside the geometry, time going back, reserved types) appearing mid-run.
"""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.io import _evt_kernels as K
from eventclip.io._evt_reference import reference_decode_evt2, reference_decode_evt3
from tests.test_io_prophesee_raw import _check_kernel_vs_reference

TYPES = np.array([0x0, 0x2, 0x2, 0x2, 0x3, 0x4, 0x5, 0x6, 0x6, 0x8, 0xA, 0x7])


def _stream(rng: np.random.Generator, n: int, rising: bool = True, types: np.ndarray = TYPES) -> np.ndarray:
    """Words of the given types; TIME_LOW rising, or at random (time then also goes back, with or
    without events in between: only the second is an error)."""
    t = rng.choice(types, n)
    v = rng.integers(0, 0x1000, n)
    v = np.where(np.isin(t, [0x0, 0x2, 0x3]), (v & 0x800) | rng.integers(0, 40, n), v)
    low = rng.integers(0, 0x1000, n)
    v = np.where(t == 0x6, np.sort(low) if rising else low, v)
    v = np.where(t == 0x8, np.arange(n) // 50, v)
    w = ((t << 12) | v).astype(np.uint16)
    w[0] = 0x8000
    return w


def _failing_streams(kernel, reference, streams, rng: np.random.Generator, cases: int = 150) -> int:
    """Check ``kernel`` against ``reference`` on ``cases`` word streams from ``streams(n)`` (random
    sizes, 20-47 pixel sensors); returns how many of them the reference rejects."""
    errors = 0
    for _ in range(cases):
        words = streams(int(rng.integers(1, 300)))
        width, height = int(rng.integers(20, 48)), int(rng.integers(20, 48))
        try:
            reference(words, width, height)
        except Exception:  # noqa: BLE001 - only counting that error cases occur
            errors += 1
        _check_kernel_vs_reference(kernel, reference, words, width, height)
    return errors


@pytest.mark.parametrize("seed", range(4))
def test_evt3_runs_with_errors_mid_run_match_reference(seed):
    rng = np.random.default_rng(seed)
    errors = _failing_streams(K.decode_evt3, reference_decode_evt3, lambda n: _stream(rng, n), rng)
    assert 0 < errors < 150  # both valid and failing streams were exercised


def _stream2(rng: np.random.Generator, n: int) -> np.ndarray:
    typ = rng.choice(np.array([0x0, 0x1, 0x0, 0x1, 0x0, 0x1, 0x8, 0xA, 0xE]), n)
    t_low = np.sort(rng.integers(0, 64, n))
    x, y = rng.integers(0, 40, n), rng.integers(0, 40, n)
    cd = (typ << 28) | (t_low << 22) | (x << 11) | y
    other = (typ << 28) | np.where(typ == 0x8, np.arange(n) // 40, rng.integers(0, 1 << 22, n))
    w = np.where(typ <= 1, cd, other).astype(np.uint32)
    w[0] = 0x80000000
    return w


@pytest.mark.parametrize("seed", range(4))
def test_evt2_runs_with_errors_mid_run_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    errors = _failing_streams(K.decode_evt2, reference_decode_evt2, lambda n: _stream2(rng, n), rng)
    assert 0 < errors < 150  # both valid and failing streams were exercised


@pytest.mark.parametrize("seed", range(3))
def test_evt3_time_low_going_back_matches_reference(seed):
    """TIME_LOW at random: the run's time check is conservative (a TIME_LOW below the last event's
    time undoes the run even when no event follows it), so the general path must then decode
    exactly what the reference decodes, erroring only when an event really goes back."""
    rng = np.random.default_rng(200 + seed)
    errors = _failing_streams(K.decode_evt3, reference_decode_evt3, lambda n: _stream(rng, n, rising=False), rng)
    assert 0 < errors < 150


@pytest.mark.parametrize("seed", range(3))
def test_evt3_small_output_buffers_match_reference(seed):
    """Output buffers of 13-40 events (the kernel needs 12 spare): dense vectors make the run
    stop for want of space mid-stream, again and again, and nothing may be lost or overrun."""
    rng = np.random.default_rng(300 + seed)
    dense = np.array([0x0, 0x2, 0x2, 0x3, 0x4, 0x4, 0x4, 0x6])
    for _ in range(100):
        words = _stream(rng, int(rng.integers(1, 300)), types=dense)
        vec = (words >> 12) == 0x4
        words[vec] |= 0xFFF  # all 12 columns
        width, height = int(rng.integers(40, 64)), int(rng.integers(40, 64))
        _check_kernel_vs_reference(K.decode_evt3, reference_decode_evt3, words, width, height,
                                   room=int(rng.integers(13, 41)))


@pytest.mark.parametrize("seed", range(2))
def test_evt2_small_output_buffers_match_reference(seed):
    rng = np.random.default_rng(400 + seed)
    for _ in range(100):
        words = _stream2(rng, int(rng.integers(1, 300)))
        width, height = 48, 48
        _check_kernel_vs_reference(K.decode_evt2, reference_decode_evt2, words, width, height,
                                   room=int(rng.integers(1, 20)))


def _long_runs2(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Mostly CD words in runs of ~50-400 (like real files: one TIME_HIGH per few hundred words), so
    runs span several of the kernel's 64-word tiles; coordinates often on the sensor's last row and
    column; sometimes one event placed just outside the sensor or one time low going back."""
    typ = rng.integers(0, 2, n)
    breaks = np.cumsum(rng.integers(50, 400, n // 50 + 1))
    typ[breaks[breaks < n]] = 0x8
    t_low = np.sort(rng.integers(0, 64, n))
    x = np.where(rng.random(n) < 0.3, min(width, 2048) - 1, rng.integers(0, min(width, 2048), n))
    y = np.where(rng.random(n) < 0.3, min(height, 2048) - 1, rng.integers(0, min(height, 2048), n))
    k = int(rng.integers(1, n)) if n > 1 else 0
    fault = rng.integers(0, 3)
    if fault == 1 and width < 2048:
        x[k] = width
    elif fault == 2 and height < 2048:
        y[k] = height
    elif fault == 0 and t_low[k - 1] > 0:
        t_low[k] = t_low[k - 1] - 1
    cd = (typ << 28) | (t_low << 22) | (x << 11) | y
    w = np.where(typ <= 1, cd, (0x8 << 28) | np.arange(n)).astype(np.uint32)
    w[0] = 0x80000000
    return w


@pytest.mark.parametrize("seed", range(3))
def test_evt2_long_runs_across_tiles_match_reference(seed):
    """The EVT 2.0 run decodes 64-word tiles in vectorised loops and checks each tile's events as one
    lane-packed subtraction: an event just outside the sensor or a time going back anywhere in a
    long run (including a tile's first word) must still be found, and the sensor's edge accepted."""
    rng = np.random.default_rng(500 + seed)
    errors = 0
    for _ in range(60):
        width, height = [(640, 480), (1280, 720), (2048, 2048), (4096, 3000), (1, 1), (37, 2048)][rng.integers(0, 6)]
        words = _long_runs2(rng, int(rng.integers(1, 900)), width, height)
        try:
            reference_decode_evt2(words, width, height)
        except Exception:  # noqa: BLE001 - only counting that error cases occur
            errors += 1
        _check_kernel_vs_reference(K.decode_evt2, reference_decode_evt2, words, width, height)
        _check_kernel_vs_reference(K.decode_evt2, reference_decode_evt2, words, width, height,
                                   room=int(rng.integers(1, 200)))
    assert 0 < errors < 60
