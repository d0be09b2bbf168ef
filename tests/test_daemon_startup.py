"""eventclipd's start-up and exit as a real process (issue 18): mistakes reported before the model loads,
SIGTERM answered during start-up, the thread plan applied from the CPU affinity, a recording with
garbage appended. Real processes, signals, sockets and files; a tiny model exported to ONNX."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import recording
from tests.test_daemon_stream import (
    SPINNER,
    Collector,
    _daemon,
    _free_endpoint,
    _text_cache,  # noqa: F401 - fixtures: the autouse one (text embeddings in tmp), the model, the prompts
    package,  # noqa: F401
    prompts,  # noqa: F401
)

MODEL_LOADING = ("encoder:", "onnxruntime:", " loaded on ")
"""Log lines that only appear once the model loads (INFO, text format)."""


def _args(package: Path, prompts: Path, endpoint: str, *extra: str, input_: Path | None = None) -> list[str]:
    return ["--sensor", "replay", "--input", str(input_ or recording(SPINNER)), "--prompts", str(prompts),
            "--model", str(package), "--backend", "onnxruntime", "--publish", endpoint, "--window-us", "5000",
            "--log-format", "text", "--log-level", "INFO", *extra]


def _listening_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("case", ["prompts missing", "prompts invalid", "input missing", "input folder",
                                  "model missing", "publish port in use", "metrics port in use"])
def test_mistakes_are_reported_before_the_model_loads_with_exit_2(package, prompts, tmp_path, case):
    """Each used to surface only after the model loaded (6-43 s), the metrics port as a traceback, exit 1."""
    endpoint, extra, held = _free_endpoint(), [], None
    args = dict(input_=None)
    if case == "prompts missing":
        prompts = tmp_path / "absent.yaml"
        named = str(prompts)
    elif case == "prompts invalid":
        prompts.write_text("classes: []\ntop_k: 0\n")
        named = f"{prompts}:2: top_k"
    elif case == "input missing":
        args["input_"] = tmp_path / "absent.raw"
        named = f"source.path (--input): {tmp_path / 'absent.raw'}: no such event file"
    elif case == "input folder":
        args["input_"] = tmp_path
        named = f"source.path (--input): {tmp_path}: is a folder"
    elif case == "model missing":
        package = tmp_path / "no-model"
        named = "model: "
    elif case == "publish port in use":
        held = _listening_port()
        endpoint = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        named = f"cannot bind {endpoint!r}"
    else:
        held = _listening_port()
        extra = ["--metrics-port", str(held.getsockname()[1])]
        named = f"metrics_port: cannot serve Prometheus metrics on 127.0.0.1:{held.getsockname()[1]}"
    try:
        proc = _daemon(_args(package, prompts, endpoint, *extra, **args))
        _, err = proc.communicate(timeout=120)
    finally:
        if held is not None:
            held.close()
    assert proc.returncode == 2, err
    assert named in err and "Traceback" not in err
    assert not any(line in err for line in MODEL_LOADING), err  # reported before the model was touched


def _run_to_end(prefix: list[str], env: dict[str, str], endpoint: str, args: list[str]
                ) -> tuple[int, str, Collector]:
    """Run ``prefix + eventclipd args`` to its end with a subscriber on ``endpoint``: (status, stderr, messages)."""
    coll = Collector(endpoint)
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "eventclip.daemon.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=120)
        assert coll.done.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        coll.close()
    return proc.returncode, err, coll


def _stderr_until(proc: subprocess.Popen, text: str, timeout: float = 60.0) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    pytest.fail(f"no {text!r} on stderr: {''.join(lines)}")


def test_sigterm_during_start_up_publishes_offline_and_exits_at_once(package, prompts, tmp_path):
    """The model was loaded to the end before a SIGTERM was looked at, and no offline was published.
    torch (slow to import) is the backend here, so the signal lands while the model loads."""
    pytest.importorskip("torch")
    endpoint = _free_endpoint()
    coll = Collector(endpoint)
    proc = _daemon(_args(package, prompts, endpoint, "--backend", "torch"), {"EVENTCLIP_CACHE": str(tmp_path / "c")})
    try:
        _stderr_until(proc, "starting: loading model")
        assert coll.wait_for(lambda t, m: t.endswith("/status") and m["state"] == "starting", 30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0  # it ended by itself, no SIGKILL needed
        assert coll.done.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        coll.close()
    rest = proc.stderr.read()
    states = [(m["state"], m["detail"]) for m in coll.topic("status")]
    assert states == [("starting", f"loading model {package} (torch)"), ("offline", "stopped during start-up")]
    assert "stopped during start-up" in rest and "ready:" not in rest


def test_thread_plan_comes_from_the_cpu_affinity_and_is_applied(package, prompts, tmp_path):
    """Pinned to one CPU and asked for 4 threads, the daemon plans for 1 and every library uses 1."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    endpoint = _free_endpoint()
    env = dict(os.environ, OMP_NUM_THREADS="7", EVENTCLIP_CACHE=str(tmp_path / "c"))
    env.pop("EVENTCLIP_DECODE_THREADS", None)
    rc, err, coll = _run_to_end(["taskset", "-c", str(min(os.sched_getaffinity(0)))], env, endpoint,
                                _args(package, prompts, endpoint, "--threads", "4", "--speed", "0",
                                      "--wait-for-subscribers", "1"))
    assert rc == 0, err
    threads = coll.topic("stats")[-1]["threads"]
    assert (threads["cores"], threads["limited_by"]) == (1, "affinity")
    assert (threads["decode"], threads["encoder"], threads["numba"], threads["interop"]) == (1, 1, 1, 1)
    assert threads["in_use"]["decode"] == 1 and threads["in_use"]["onnxruntime"] == 1
    assert threads["in_use"]["numba"] == 1
    assert "--threads 4 is more than the 1 core(s)" in err and "thread plan: 1 core(s) (affinity)" in err


def test_a_recording_with_garbage_appended_is_replayed_at_its_real_size(package, prompts, tmp_path):
    """The DAT geometry scan took the garbage's coordinates (a 16k x 16k sensor, 4.1 GB RSS); now the
    events before the garbage are published and the garbage is reported with its offset (exit 1)."""
    src = recording("ncars_obj_004397_td.dat")
    bad = tmp_path / "g.dat"
    bad.write_bytes(src.read_bytes() + np.random.default_rng(4099).bytes(4099))
    endpoint = _free_endpoint()
    rc, err, coll = _run_to_end([], dict(os.environ, EVENTCLIP_CACHE=str(tmp_path / "c")), endpoint,
                                _args(package, prompts, endpoint, "--speed", "0", "--wait-for-subscribers", "1",
                                      input_=bad))
    assert rc == 1, err
    errors = [m["detail"] for m in coll.topic("status") if m["state"] == "error"]
    assert errors and f"{bad} at byte {src.stat().st_size}" in errors[0]
    assert len(coll.topic("labels")) > 0 and "sensor size 54x61" in err


def test_systemd_waits_longer_than_the_sigterm_promise() -> None:
    """The unit's TimeoutStopSec must sit above the 5 s eventclipd promises (else systemd SIGKILLs first)."""
    from eventclip.daemon.config import SIGTERM_EXIT_S, DaemonConfig

    unit = (Path(__file__).parents[1] / "systemd" / "eventclipd.service").read_text()
    stop = [float(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith("TimeoutStopSec=")]
    assert len(stop) == 1 and stop[0] >= 2 * SIGTERM_EXIT_S
    assert DaemonConfig.model_fields["shutdown_timeout_s"].default <= SIGTERM_EXIT_S - 1.5
