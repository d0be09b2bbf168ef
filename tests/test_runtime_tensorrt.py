"""TensorRT: sidecar checks run everywhere; engine build + run only with a GPU and the tensorrt package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eventclip._optional import MissingDependencyError, available
from eventclip.exporters.tensorrt import EngineBuildError, parse_batch
from eventclip.runtime.tensorrt import EngineMismatchError, TensorRTBackend, check_sidecar, read_sidecar, rebuild_hint

H200 = {"tensorrt_version": "10.13.3.9", "gpu_name": "NVIDIA H200", "compute_capability": "9.0"}
SIDECAR = {**H200, "precision": "fp16", "batch": [1, 8, 32], "model_hash": "abc",
           "source_onnx": "/models/m/onnx/event_encoder.fp16.onnx"}


def test_matching_sidecar_passes():
    check_sidecar(__import__("pathlib").Path("e.engine"), SIDECAR, dict(H200), model_hash="abc")


@pytest.mark.parametrize(
    "machine, field",
    [
        ({**H200, "gpu_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}, "gpu_name"),
        ({**H200, "tensorrt_version": "11.0.1"}, "tensorrt_version"),
        ({**H200, "compute_capability": "8.9"}, "compute_capability"),
    ],
)
def test_engine_for_other_gpu_or_version_is_refused(tmp_path, machine, field):
    engine = tmp_path / "event_encoder.fp16.engine"
    with pytest.raises(EngineMismatchError) as err:
        check_sidecar(engine, SIDECAR, machine)
    msg = str(err.value)
    assert str(engine) in msg and field in msg
    assert "eventclip export tensorrt /models/m/onnx/event_encoder.fp16.onnx --fp16 --batch 1,8,32" in msg


def test_engine_for_other_model_is_refused(tmp_path):
    with pytest.raises(EngineMismatchError, match="model_hash"):
        check_sidecar(tmp_path / "e.engine", SIDECAR, dict(H200), model_hash="other")


def test_missing_or_corrupt_sidecar(tmp_path):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"x")
    with pytest.raises(EngineMismatchError, match="no sidecar e.engine.json"):
        read_sidecar(engine)
    (tmp_path / "e.engine.json").write_text("{not json")
    with pytest.raises(EngineMismatchError, match="unreadable"):
        read_sidecar(engine)


def test_rebuild_hint_for_int8():
    hint = rebuild_hint({**SIDECAR, "precision": "int8", "source_onnx": "b/event_encoder.qdq.onnx"})
    assert "--int8 --calib" in hint


@pytest.mark.parametrize("text", ["1,8", "8,1,32", "a,b,c", "0,1,2"])
def test_bad_batch_profile(text):
    with pytest.raises(EngineBuildError, match="--batch"):
        parse_batch(text)


@pytest.mark.skipif(available("tensorrt"), reason="tensorrt is installed here")
def test_backend_without_tensorrt_names_the_extra(tmp_path):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"x")
    with pytest.raises(MissingDependencyError, match=r"pip install 'eventclip\[tensorrt\]'"):
        TensorRTBackend().load(engine)


@pytest.mark.skipif(available("tensorrt"), reason="tensorrt is installed here")
def test_cli_export_tensorrt_without_tensorrt_names_the_extra(tmp_path, capsys):
    from eventclip.cli import main

    assert main(["export", "tensorrt", str(tmp_path / "event_encoder.onnx"), "--fp16"]) == 1
    assert "pip install 'eventclip[tensorrt]'" in capsys.readouterr().err


@pytest.mark.gpu
def test_fp16_engine_builds_runs_on_device_tensors_and_matches_ort(tmp_path):
    pytest.importorskip("tensorrt")
    torch = pytest.importorskip("torch")
    from eventclip.data import sample_recording_path
    from eventclip.exporters.onnx import export_onnx
    from eventclip.exporters.tensorrt import build_engine, check_engine
    from eventclip.model.clip import EventClip
    from eventclip.runtime.onnxruntime import OnnxRuntimeBackend

    rec = sample_recording_path()  # shipped in the repository, so a bare GPU machine has it too
    cfg = {"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
    pkg = EventClip.from_clip(cfg, seed=0, with_image_encoder=False).save_pretrained(tmp_path / "pkg")
    result = export_onnx(pkg, fp16=True, recording=rec)
    build = build_engine(result.root, precision="fp16", batch=(1, 4, 8))
    assert json.loads((build.engine.parent / (build.engine.name + ".json")).read_text())["precision"] == "fp16"
    assert (result.root / "engines" / "timing.cache").stat().st_size > 0
    check_engine(build.engine, rec, "fp16")
    backend = TensorRTBackend(precision="fp16")
    backend.load(pkg)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    dev = torch.from_numpy(x).cuda()
    y = backend.encode_device(dev)
    assert y.is_cuda and y.shape == (4, 64)
    ort = OnnxRuntimeBackend()
    ort.load(pkg)
    np.testing.assert_allclose(y.cpu().numpy(), ort.encode(x), atol=1e-2)
    with pytest.raises(Exception, match="outside the engine's profile"):
        backend.encode_device(torch.zeros(9, 3, 32, 32, device="cuda"))
