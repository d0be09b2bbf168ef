"""Fuzz the N-MNIST and N-ImageNet readers with mutated copies of the real N-MNIST sample and of an
N-ImageNet-layout npz (tests/_fuzz_others.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from eventclip.io.datasets import NImageNetReader, NmnistReader
from tests._fuzz_others import CI_CASES, SEED, SLOW_CASES, run_fuzz
from tests.conftest import recording


@pytest.fixture(scope="module")
def nmnist_seeds() -> list[bytes]:
    data = recording("nmnist_sample.bin").read_bytes()
    return [data[:2000], data]


@pytest.fixture(scope="module")
def nimagenet_seeds() -> list[bytes]:
    rng = np.random.default_rng(2)
    data = np.empty(200, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "?")])
    data["x"], data["y"] = rng.integers(0, 640, 200), rng.integers(0, 480, 200)
    data["t"], data["p"] = np.cumsum(rng.integers(0, 9, 200)), rng.integers(0, 2, 200)
    seeds = []
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, event_data=data)
        seeds.append(buf.getvalue())
    return seeds


def test_fuzz_nmnist_ci(tmp_path, nmnist_seeds):
    counts = run_fuzz(tmp_path, NmnistReader, nmnist_seeds, CI_CASES, ".bin")
    assert counts["ok"] > 0 and counts["error"] > 0, counts


def test_fuzz_nimagenet_ci(tmp_path, nimagenet_seeds):
    counts = run_fuzz(tmp_path, NImageNetReader, nimagenet_seeds, CI_CASES // 2, ".npz")
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
def test_fuzz_datasets_long(tmp_path, nmnist_seeds, nimagenet_seeds):
    run_fuzz(tmp_path, NmnistReader, nmnist_seeds, SLOW_CASES, ".bin", seed=SEED + 3)
    run_fuzz(tmp_path, NImageNetReader, nimagenet_seeds, SLOW_CASES // 4, ".npz", seed=SEED + 4)
