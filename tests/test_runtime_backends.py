"""Backend selection, the torch backend, and the ONNX Runtime path running with torch/open_clip blocked."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import ROOT, recording

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("onnxruntime")

from eventclip._optional import MissingDependencyError  # noqa: E402
from eventclip.exporters.onnx import export_onnx  # noqa: E402
from eventclip.exporters.parity import recording_windows  # noqa: E402
from eventclip.model.clip import EventClip  # noqa: E402
from eventclip.runtime.base import Backend, BackendError, select  # noqa: E402

SMALL = {
    "embed_dim": 48,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
REC = "prophesee_evt2_sparklers_gen3_640x480.raw"
PROMPTS = ["sparklers at night", "a dog", "Café &amp; résumé ²"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = EventClip.from_clip(SMALL, seed=3, with_image_encoder=False)
    pkg = model.save_pretrained(tmp_path_factory.mktemp("pkg") / "m")
    export_onnx(pkg, int8=True, recording=recording(REC))
    windows, geometry = recording_windows(recording(REC), 33_000, max_windows=4)
    rep = model.representation.model_copy(update={"input_size": model.input_size})
    return pkg, rep(windows, geometry)


def test_auto_prefers_onnxruntime_here_and_logs_why(exported, caplog):
    pkg, x = exported
    with caplog.at_level(logging.INFO, logger="eventclip.runtime.base"):
        choice = select(pkg)
    assert choice.backend.name == "onnxruntime"
    assert isinstance(choice.backend, Backend)
    assert any(s.startswith("tensorrt:") for s in choice.skipped), choice.skipped
    assert "backend onnxruntime chosen" in caplog.text and "tensorrt:" in caplog.text
    assert choice.backend.encode(x).shape == (len(x), 48)


def test_auto_falls_back_to_torch_without_export(exported, tmp_path):
    pkg, x = exported
    model = EventClip.from_pretrained(pkg)
    bare = model.save_pretrained(tmp_path / "bare")
    choice = select(bare)
    assert choice.backend.name == "torch"
    assert any("onnxruntime: no ONNX export found" in s for s in choice.skipped)
    np.testing.assert_allclose(choice.backend.encode(x), select(pkg, "onnxruntime").backend.encode(x), atol=1e-5)
    np.testing.assert_allclose(choice.backend.encode_text(PROMPTS), model.encode_text(PROMPTS).numpy(), atol=1e-6)


def test_named_backend_missing_package_names_extra(exported, monkeypatch):
    pkg, _ = exported
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorrt" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install 'eventclip\[tensorrt\]'"):
        select(pkg, "tensorrt")


def test_unknown_backend_and_nothing_usable(exported, tmp_path):
    with pytest.raises(BackendError, match="unknown backend 'tflite'"):
        select(exported[0], "tflite")
    with pytest.raises(BackendError, match="no backend can run"):
        select(tmp_path)


def test_onnxruntime_backend_runs_without_torch_or_open_clip(exported, tmp_path):
    """The daemon's path: ONNX Runtime + the package's text encoder, with the training stack unimportable."""
    pkg, x = exported
    np.save(tmp_path / "x.npy", x)
    model = EventClip.from_pretrained(pkg)
    with torch.no_grad():
        np.save(tmp_path / "want_img.npy", model.encode_frames(torch.from_numpy(x)).numpy())
        np.save(tmp_path / "want_txt.npy", model.encode_text(PROMPTS).numpy())
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        BLOCKED = ("torch", "open_clip", "torchvision")
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None
        sys.meta_path.insert(0, Block())
        import numpy as np
        from eventclip.runtime.base import select
        choice = select({str(pkg)!r})
        img = choice.backend.encode(np.load({str(tmp_path / "x.npy")!r}))
        txt = choice.backend.encode_text({PROMPTS!r})
        np.save({str(tmp_path / "img.npy")!r}, img)
        np.save({str(tmp_path / "txt.npy")!r}, txt)
        print(json.dumps({{"backend": choice.backend.name,
                           "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"backend": "onnxruntime", "loaded": []}
    np.testing.assert_allclose(np.load(tmp_path / "img.npy"), np.load(tmp_path / "want_img.npy"), atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "txt.npy"), np.load(tmp_path / "want_txt.npy"), atol=1e-5)


def test_config_fields_reach_the_backends_that_have_them(exported, tmp_path):
    pkg, x = exported
    choice = select(pkg, precision="int8", threads=1)
    assert choice.backend.name == "onnxruntime" and choice.backend.config.precision == "int8"
    assert choice.backend.encode(x).shape == (len(x), 48)
    bare = EventClip.from_pretrained(pkg).save_pretrained(tmp_path / "bare")
    with pytest.raises(BackendError, match="torch: backend 'torch' config: precision"):
        select(bare, precision="int8")


def test_bad_config_field_is_named(exported):
    from eventclip.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        select(exported[0], "onnxruntime", precision="int4")
    with pytest.raises(ConfigError, match="thraeds"):
        select(exported[0], "onnxruntime", thraeds=2)
