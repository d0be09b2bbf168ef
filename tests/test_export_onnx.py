"""ONNX export of a small random-weight model: graphs, parity on real frames, backends, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import recording, small_clip_package

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("onnxruntime")

from eventclip.exporters.onnx import ExportError, export_onnx, verify_bundle  # noqa: E402
from eventclip.exporters.parity import ParityError  # noqa: E402
from eventclip.model.clip import EventClip  # noqa: E402
from eventclip.runtime.base import BackendError, find_bundle  # noqa: E402
from eventclip.runtime.onnxruntime import OnnxRuntimeBackend  # noqa: E402

REC = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"
PROMPTS = ["a spinning disk", "a car", "a person walking", "a tree"]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return small_clip_package(tmp_path_factory.mktemp("pkg"))


@pytest.fixture(scope="module")
def bundle(package):
    result = export_onnx(package, fp16=True, int8=True, fuse_head=True, prompts=PROMPTS, recording=recording(REC))
    return result


def _frames(package, n=5, seed=1):
    model = EventClip.from_pretrained(package)
    from eventclip.exporters.parity import recording_windows

    windows, geometry = recording_windows(recording(REC), 33_000, max_windows=n)
    return model, model.representation.model_copy(update={"input_size": model.input_size})(windows, geometry)


def test_export_writes_bundle_and_passes_parity(bundle, package):
    root = bundle.root
    assert root == package / "onnx"
    manifest = json.loads((root / "export.json").read_text())
    assert set(manifest["files"]) == {"event_encoder.fp32", "event_encoder.cpu", "event_encoder.fp16",
                                      "event_encoder.int8", "text_encoder", "fused"}
    assert manifest["context_length"] == 16 and manifest["input_size"] == 32
    names = {r["name"]: r for r in manifest["parity"]["reports"]}
    assert names["event_encoder.onnx"]["n"] >= 8, "parity ran on several real windows"
    assert names["event_encoder.onnx"]["max_abs"] < 1e-4 and names["event_encoder.onnx"]["top1"] == 1.0
    assert names["fused.onnx"]["min_cosine"] > 0.9999
    assert names["event_encoder.int8.onnx"]["min_cosine"] > 0.9


def test_layernorm_is_one_node_and_no_fused_attention(bundle):
    import onnx

    for name in ("event_encoder.onnx", "event_encoder.fp16.onnx", "text_encoder.onnx"):
        ops = {n.op_type for n in onnx.load(str(bundle.root / name)).graph.node}
        assert "LayerNormalization" in ops, name
        assert not any("MultiHeadAttention" in op or "native" in op.lower() for op in ops), (name, ops)


def test_onnxruntime_backend_matches_torch_at_any_batch(bundle, package):
    model, x = _frames(package)
    backend = OnnxRuntimeBackend()
    backend.load(package)
    for b in (1, len(x)):
        got = backend.encode(x[:b])
        with torch.no_grad():
            want = model.encode_frames(torch.from_numpy(x[:b])).numpy()
        assert got.shape == (b, 64)
        np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(backend.encode_text(PROMPTS), model.encode_text(PROMPTS).numpy(), atol=1e-5)
    np.testing.assert_allclose(backend.encode(torch.from_numpy(x)), backend.encode(x))


@pytest.mark.parametrize("precision, min_cos", [("int8", 0.9), ("fp16", 0.999)])
def test_reduced_precision_backends_run_and_agree(bundle, package, precision, min_cos):
    model, x = _frames(package)
    backend = OnnxRuntimeBackend(precision=precision)
    backend.load(bundle.root)
    with torch.no_grad():
        want = model.encode_frames(torch.from_numpy(x)).numpy()
    cos = (backend.encode(x) * want).sum(1)
    assert cos.min() > min_cos


def test_fused_graph_equals_frames_pipeline(bundle, package):
    import onnxruntime as ort

    from eventclip.exporters.parity import recording_windows
    from eventclip.frames.accumulate import count_events, stack_windows

    model = EventClip.from_pretrained(package)
    windows, geometry = recording_windows(recording(REC), 33_000, max_windows=3)
    events, offsets = stack_windows(windows)
    rep = model.representation.model_copy(update={"input_size": model.input_size})
    counts = count_events(events, geometry, offsets, per_polarity=True, grid=rep.grid(geometry)).astype(np.float32)
    assert list(counts.shape[1:]) == bundle.manifest["fused"]["counts_shape"]
    emb, logits = ort.InferenceSession(str(bundle.root / "fused.onnx")).run(None, {"counts": counts})
    with torch.no_grad():
        want = model.encode_frames(torch.from_numpy(rep(windows, geometry))).numpy()
        text = model.encode_text(PROMPTS).numpy()
    np.testing.assert_allclose(emb, want, atol=1e-5)
    np.testing.assert_allclose(logits, model.card.logit_multiplier * want @ text.T, atol=1e-3)
    assert bundle.manifest["fused"]["labels"] == PROMPTS


def test_tampered_graph_fails_parity(bundle, package, tmp_path):
    import onnx
    from onnx import numpy_helper

    copy = tmp_path / "tampered"
    shutil.copytree(bundle.root, copy)
    assert len(verify_bundle(package, copy, recording(REC))) == 6, "an intact copy passes"
    m = onnx.load(str(copy / "event_encoder.onnx"))
    init = max(m.graph.initializer, key=lambda t: np.prod(t.dims))
    arr = numpy_helper.to_array(init).copy()
    arr += np.float32(0.5) * np.sign(arr + 1e-6)
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(m, str(copy / "event_encoder.onnx"))
    with pytest.raises(ParityError, match=r"event_encoder\.onnx \(fp32\) disagrees with PyTorch"):
        verify_bundle(package, copy, recording(REC))


@pytest.mark.parametrize("name, precision", [("event_encoder.cpu.onnx", "fp32"), ("event_encoder.int8.onnx", "int8")])
def test_corrupt_onnx_gives_clear_error(bundle, tmp_path, name, precision):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.root, copy)
    (copy / name).write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(BackendError, match=name.replace(".", r"\.") + ".*corrupt"):
        OnnxRuntimeBackend(precision=precision).load(copy)


def test_missing_bundle_and_missing_graph(bundle, tmp_path):
    with pytest.raises(BackendError, match="eventclip export onnx"):
        find_bundle(tmp_path)
    copy = tmp_path / "b2"
    shutil.copytree(bundle.root, copy)
    (copy / "event_encoder.int8.onnx").unlink()
    with pytest.raises(BackendError, match=r"event_encoder\.int8\.onnx.* missing"):
        OnnxRuntimeBackend(precision="int8").load(copy)


def test_package_with_missing_file_is_refused(package, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(package, broken, ignore=shutil.ignore_patterns("onnx"))
    (broken / "text_encoder.safetensors").unlink()
    with pytest.raises(Exception, match="text_encoder.safetensors"):
        export_onnx(broken, tmp_path / "out", recording=recording(REC))


def test_bad_options(package, tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(package, tmp_path / "o1", opset=13, check=False)
    with pytest.raises(ExportError, match="--prompts"):
        export_onnx(package, tmp_path / "o2", fuse_head=True, check=False)


def test_cli_export_onnx(package, tmp_path, capsys):
    from eventclip.cli import main

    out = tmp_path / "cli"
    assert main(["export", "onnx", str(package), "--out", str(out), "--int8", "--recording", str(recording(REC))]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'event_encoder.int8.onnx'}" in text
    assert "parity ok: event_encoder.onnx [fp32]" in text and "parity ok: text_encoder.onnx" in text
    assert (out / "event_encoder.cpu.onnx").is_file()
    lean = tmp_path / "lean"
    assert main(["export", "onnx", str(package), "--out", str(lean), "--no-cpu-graph", "--no-check"]) == 0
    assert (lean / "event_encoder.onnx").is_file() and not (lean / "event_encoder.cpu.onnx").exists()
    capsys.readouterr()
    assert main(["export", "onnx", str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert "nope" in capsys.readouterr().err


def test_fused_head_from_prompts_yaml_uses_ensembled_classes(package, tmp_path):
    from eventclip.heads.prompts import embed_prompts, load_prompts
    from tests.conftest import ROOT

    path = ROOT / "zero_shot_prompts" / "nmnist.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not shipped")
    result = export_onnx(package, tmp_path / "yaml", fuse_head=True, prompts=path, recording=recording(REC),
                         parity_windows=4)
    model = EventClip.from_pretrained(package)
    want = embed_prompts(load_prompts(path), model.encode_text_numpy)
    assert result.manifest["fused"]["labels"] == want.labels
    import onnxruntime as ort

    from eventclip.exporters.parity import recording_windows
    from eventclip.frames.accumulate import count_events, stack_windows

    windows, geometry = recording_windows(recording(REC), 33_000, max_windows=2)
    events, offsets = stack_windows(windows)
    grid = model.representation.grid(geometry)
    counts = count_events(events, geometry, offsets, per_polarity=True, grid=grid).astype(np.float32)
    emb, logits = ort.InferenceSession(str(result.root / "fused.onnx")).run(None, {"counts": counts})
    assert logits.shape == (2, len(want.labels))
    np.testing.assert_allclose(logits, model.card.logit_multiplier * emb @ want.classes.T, atol=1e-3)
