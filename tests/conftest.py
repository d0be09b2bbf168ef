"""Shared fixtures: the real recordings beside the project, and device detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("EVENTCLIP_RECORDINGS", ROOT.parent / "shared" / "data" / "recordings"))


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The folder of real sensor recordings; skips the test when it is absent (fresh clone elsewhere)."""
    if not RECORDINGS.is_dir():
        pytest.skip(f"real recordings not found at {RECORDINGS} (set EVENTCLIP_RECORDINGS to their folder)")
    return RECORDINGS


def recording(name: str) -> Path:
    """Path of one real recording, skipping the calling test when it is absent."""
    path = RECORDINGS / name
    if not path.is_file():
        pytest.skip(f"real recording {name} not found in {RECORDINGS}")
    return path


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
