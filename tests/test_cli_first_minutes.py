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
