"""The first five minutes of a new user (issue 20, item 5): one --geometry flag, errors that name
flags, the daemon's bundled prompts, the --demo's explanations and true labels, progress bars only
on a terminal, and an ONNX export that prints only what matters."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.cli import main
from tests.conftest import recording
from tests.test_daemon_stream import SPINNER, _text_cache, package, prompts  # noqa: F401 - fixtures


def test_retrieve_build_refuses_a_recording_whose_size_differs_from_geometry(package, tmp_path, capsys):  # noqa: F811
    from eventclip.io import read_events

    stated = recording(SPINNER)  # its header says 640x480
    bare = tmp_path / "bare.npy"  # states no size
    events = read_events(stated).events[:5000]
    np.save(bare, events)
    common = ["retrieve", "build", "--modality", "event", "--model", str(package), "--backend", "onnxruntime",
              "--window-us", "5000"]
    assert main([*common, str(stated), str(bare), "--geometry", "64x64", "--out", str(tmp_path / "a.npz")]) == 2
    err = capsys.readouterr().err
    assert str(stated) in err and "640x480" in err and "--geometry" in err
    assert main([*common, str(stated), str(bare), "--geometry", "640x480", "--out", str(tmp_path / "b.npz")]) == 0
    assert np.load(tmp_path / "b.npz", allow_pickle=False)["embeddings"].shape[0] == 2


@pytest.mark.parametrize("command", ["info", "frames", "classify", "explain"])
def test_every_command_takes_geometry_and_names_the_retired_flags(command, tmp_path, capsys):
    extra = {"explain": ["--model", "default", "--prompts", "p.yaml", "--out", "x.png"]}.get(command, [])
    assert main([command, "x.raw", *extra, "--width", "64", "--height", "48"]) == 2
    assert "--width/--height were replaced by --geometry WIDTHxHEIGHT" in capsys.readouterr().err
    assert main([command, "x.raw", *extra, "--geometry", "64by48"]) == 2
    assert "--geometry must look like 640x480" in capsys.readouterr().err


def test_daemon_without_prompts_uses_the_bundled_models_own_and_names_the_flag_otherwise(package, tmp_path):  # noqa: F811
    from eventclip.daemon.config import load_config
    from eventclip.data import default_prompts_path
    from eventclip.errors import ConfigError

    for model in ({}, {"model": "default"}):
        assert load_config(None, {"sensor": "replay", "input": "x.raw", **model}).prompts == default_prompts_path()
    with pytest.raises(ConfigError, match="pass --prompts FILE"):
        load_config(None, {"sensor": "replay", "input": "x.raw", "model": str(package)})


def test_daemon_replays_a_file_with_only_sensor_and_input(tmp_path):
    """`eventclipd --sensor replay --input F` with nothing else: the bundled model and its prompts, as --demo."""
    from eventclip.data import sample_recording_path
    from tests.test_daemon_stream import Collector, _daemon, _free_endpoint

    endpoint = _free_endpoint()
    coll = Collector(endpoint)
    proc = _daemon(["--sensor", "replay", "--input", str(sample_recording_path()), "--speed", "0",
                    "--publish", endpoint, "--wait-for-subscribers", "1"], {"EVENTCLIP_CACHE": str(tmp_path)})
    try:
        _, err = proc.communicate(timeout=300)
        assert coll.done.wait(10)
    finally:
        coll.close()
    assert proc.returncode == 0, err
    import yaml

    from eventclip.data import default_prompts_path

    bundled = yaml.safe_load(default_prompts_path().read_text())
    labels = coll.topic("labels")
    assert len(labels) >= 10 and all(len(m["labels"]) == bundled["top_k"] for m in labels)
    assert {lab["label"] for m in labels for lab in m["labels"]} <= set(bundled["classes"])


def _on_a_terminal(argv: list[str], timeout_s: float = 300) -> tuple[int, str]:
    """Run ``argv`` with stderr on a real pseudo-terminal (80 columns); its exit status and what it drew there."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    return proc.wait(timeout_s), drawn.decode(errors="replace")


def test_export_prints_no_expected_warning_and_no_bar_off_a_terminal_and_a_bar_on_one(tmp_path):
    import subprocess
    import sys

    from tests.conftest import small_clip_package

    pytest.importorskip("onnxruntime")
    pkg = small_clip_package(tmp_path)
    done = subprocess.run([sys.executable, "-m", "eventclip.cli", "export", "onnx", str(pkg)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "parity ok" in done.stdout
    assert done.stderr == ""  # no MultiHeadAttention shape-inference warnings, no bar in a pipe
    rc, drawn = _on_a_terminal([sys.executable, "-m", "eventclip.cli", "export", "onnx", str(pkg), "--no-check",
                                "--out", str(tmp_path / "again")])
    assert rc == 0
    assert "export: text encoder" in drawn and "export: ONNX Runtime CPU graph" in drawn and "step" in drawn
    assert "MultiHeadAttention" not in drawn


def test_native_warnings_other_than_the_expected_ones_are_kept(capfd):
    import os

    from eventclip.exporters.onnx import EXPECTED_NATIVE, _native_stderr_without

    with _native_stderr_without(EXPECTED_NATIVE):
        os.write(2, f"[W] Warning: {EXPECTED_NATIVE[0]}, so it may result in wrong shape inference\n".encode())
        os.write(2, b"[W] Warning: something that matters\n")
    assert capfd.readouterr().err == "[W] Warning: something that matters\n"


def test_progress_is_off_when_stderr_is_not_a_terminal(capsys):
    import threading

    from eventclip.progress import bar, enabled

    threads = set(threading.enumerate())
    assert not enabled()
    assert [i for i in bar(range(3), desc="quiet")] == [0, 1, 2]
    with bar(total=4) as shown:
        shown.update(3)
        shown.set_description("still quiet")
        assert shown.n == 3
    assert capsys.readouterr().err == ""
    assert set(threading.enumerate()) <= threads  # no (tqdm monitor) thread left behind to be forked


def test_retrieve_build_shows_a_bar_on_a_terminal(package, tmp_path):  # noqa: F811
    import sys

    rc, drawn = _on_a_terminal([sys.executable, "-m", "eventclip.cli", "retrieve", "build", "--modality", "event",
                                str(recording(SPINNER)), "--model", str(package), "--backend", "onnxruntime",
                                "--window-us", "5000", "--out", str(tmp_path / "index.npz")])
    assert rc == 0, drawn
    assert "embedding event files" in drawn and "1/1" in drawn
