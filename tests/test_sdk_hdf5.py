"""Real Metavision HDF5: files the REAL SDK's ``HDF5EventFileWriter`` writes (ECF-compressed) from the
shared recordings are read exactly by our HDF5 reader when the SDK's ECF plugin is on
HDF5_PLUGIN_PATH, and refused with what to set when it is not (checked in child processes, since
HDF5 looks for plugins once per process)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from eventclip.io import hdf5 as hdf5_mod
from eventclip.io import open_events, read_events
from tests._io_helpers import environment_without, read_hdf5_in_child, same_events
from tests._sdk import RAW_RECORDINGS, copy_recording, write_hdf5_with_sdk

pytestmark = pytest.mark.sdk
h5py = pytest.importorskip("h5py")



@pytest.fixture(scope="module")
def sdk_hdf5(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """recording name -> (its RAW copy, the HDF5 file the SDK wrote from it)."""
    folder = tmp_path_factory.mktemp("sdk_hdf5")
    out = {}
    for name in RAW_RECORDINGS:
        raw = copy_recording(name, folder)
        write_hdf5_with_sdk(raw, raw.with_suffix(".hdf5"))
        out[name] = (raw, raw.with_suffix(".hdf5"))
    return out


@pytest.mark.parametrize("name", RAW_RECORDINGS)
def test_sdk_written_ecf_hdf5_is_read_exactly(sdk_hdf5, name, monkeypatch):
    raw, path = sdk_hdf5[name]
    with h5py.File(path, "r") as f:
        plist = f["CD/events"].id.get_create_plist()
        assert hdf5_mod.ECF_FILTER_ID in [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if not h5py.h5z.filter_avail(hdf5_mod.ECF_FILTER_ID):
        pytest.fail(f"the SDK's ECF plugin does not load here (HDF5_PLUGIN_PATH={os.environ.get('HDF5_PLUGIN_PATH')})"
                    f": {hdf5_mod.ecf_advice()}")
    source = read_events(raw)
    chunk = read_events(path)
    assert chunk.geometry == source.geometry and chunk.meta["geometry_source"] == "format"
    assert same_events(chunk.events, source.events)
    monkeypatch.setattr(hdf5_mod, "BLOCK_EVENTS", 4099)  # streamed across many ECF chunks too
    with open_events(path, n_events=10_000) as stream:
        assert same_events(np.concatenate([c.events for c in stream]), source.events)


def test_without_the_ecf_plugin_the_error_says_what_to_set(sdk_hdf5):
    path = sdk_hdf5[RAW_RECORDINGS[2]][1]
    available, message = read_hdf5_in_child(path, environment_without("HDF5_PLUGIN_PATH"))
    assert available == "False"
    assert str(path) in message and "ECF" in message and "HDF5_PLUGIN_PATH is not set" in message
    assert "lib/hdf5/plugin" in message and "LD_LIBRARY_PATH" in message and "hdf5plugin does not" in message


def test_plugin_without_its_codec_library_names_ld_library_path(sdk_hdf5):
    """HDF5_PLUGIN_PATH alone is not enough: the plugin needs the SDK's libhdf5_ecf_codec.so.1."""
    path = sdk_hdf5[RAW_RECORDINGS[2]][1]
    folders = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    kept = [f for f in folders if f and not (Path(f) / "libhdf5_ecf_codec.so.1").exists()]
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(kept))
    available, message = read_hdf5_in_child(path, env)
    assert available == "False"
    assert hdf5_mod.ECF_PLUGIN in message and "does not load" in message and "LD_LIBRARY_PATH" in message



def test_plugin_path_set_after_hdf5_started_says_so(sdk_hdf5):
    """HDF5 reads HDF5_PLUGIN_PATH once per process: setting it from Python afterwards does not help."""
    import subprocess
    import sys

    code = ("import os, sys\n"
            "path = os.environ.pop('HDF5_PLUGIN_PATH')\n"
            "import h5py\n"
            "h5py.h5z.filter_avail(36559)\n"
            "os.environ['HDF5_PLUGIN_PATH'] = path\n"
            "from eventclip.io import UnsupportedFeatureError, read_events\n"
            "try:\n    read_events(sys.argv[1])\nexcept UnsupportedFeatureError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(sdk_hdf5[RAW_RECORDINGS[2]][1])], capture_output=True,
                          text=True, timeout=120, check=True)
    assert "which loads, but HDF5 looks for plugins once per process" in done.stdout
