"""A real eventclipd process replaying a real recording in a loop at real speed through the tiny test
model (tests/test_daemon_stream.py's fixtures), for tests that watch a stream that goes on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import recording
from tests.test_daemon_stream import SPINNER, _daemon


def looping_daemon(package: Path, prompts: Path, tmp_path: Path, endpoint: str, *flags: str,
                   config: str = "") -> subprocess.Popen:
    """eventclipd on ``endpoint`` (20 ms windows), waiting for its first subscriber; ``config`` adds YAML lines."""
    path = tmp_path / "loop.yaml"
    path.write_text("source: {kind: replay, loop: true}\n" + config)
    return _daemon(["--config", str(path), "--sensor", "replay", "--input", str(recording(SPINNER)),
                    "--prompts", str(prompts), "--model", str(package), "--backend", "onnxruntime",
                    "--publish", endpoint, "--window-us", "20000", "--log-format", "text", *flags],
                   {"EVENTCLIP_CACHE": str(tmp_path / "cache")})
