"""Shared fixtures: the real recordings beside the project, and device detection."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from functools import lru_cache
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


LARGE_SENSOR_RECORDINGS = (
    "prophesee_evt3_driving_gen41_1280x720.raw",
    "prophesee_evt3_pedestrians_first5000_gen41_1280x720.raw",
    "prophesee_evt2_sparklers_gen3_640x480.raw",
    "prophesee_evt2_spinner_excerpt_gen3_640x480.raw",
    "inivation_davis346_events_frames_imu.aedat4",
    "inivation_dvxplorer_320x240.aedat4",
)
"""The shared recordings from sensors larger than the models' inputs (346x260 to 1280x720)."""


def recording(name: str) -> Path:
    """Path of one real recording, skipping the calling test when it is absent."""
    path = RECORDINGS / name
    if not path.is_file():
        pytest.skip(f"real recording {name} not found in {RECORDINGS}")
    return path


def run_python(code: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in a session of its own; on ``timeout`` kill its whole
    process group (forked children included) and fail the test.

    Why: a test that forks, or opens something that may block, must not be able to hang the suite
    (a forked child stuck on a lock ignores SIGTERM, and pytest would wait for it at exit).
    """
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the child process hung for {timeout:g} s and was killed with its group; output:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


SMALL_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""A real open_clip ViT/text-transformer architecture, small enough to export and run in seconds."""


def small_clip_package(folder: Path) -> Path:
    """Save a random-weight :data:`SMALL_CLIP` event model (seed 0) as a package in ``folder``."""
    import torch

    from eventclip.model.clip import EventClip

    torch.manual_seed(0)
    return EventClip.from_clip(SMALL_CLIP, seed=0, with_image_encoder=False).save_pretrained(folder / "small")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


SDK_MODULES = ("metavision_sdk_base", "metavision_hal", "metavision_sdk_stream", "metavision_core.event_io")
"""What the tests marked ``sdk`` import from the real Metavision SDK."""


@lru_cache(maxsize=1)
def sdk_missing() -> str | None:
    """Why the real Metavision SDK cannot be imported here (None when it can)."""
    for name in SDK_MODULES:
        try:
            importlib.import_module(name)
        except (ImportError, OSError) as exc:
            return (f"the Metavision SDK does not import ({name}: {exc}); with OpenEB beside the project, run "
                    "../shared/openeb/install-runtime.sh once and 'source .ci/openeb.sh' (docs/sensors.md)")
    return None


def pytest_collection_modifyitems(config, items):
    if not cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU; none here")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
    sdk_items = [item for item in items if item.get_closest_marker("sdk") is not None]
    if sdk_items and (reason := sdk_missing()) is not None:
        for item in sdk_items:
            item.add_marker(pytest.mark.skip(reason=reason))
