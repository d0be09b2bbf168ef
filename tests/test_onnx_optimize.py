"""The ONNX Runtime CPU form of the event encoder: rewritten modules, the fused graph, backend choice."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import recording, small_clip_package

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from eventclip.exporters.onnx import export_onnx  # noqa: E402
from eventclip.exporters.ort_cpu import FusedSelfAttention, PatchEmbedMatMul, cpu_encoder  # noqa: E402
from eventclip.model.clip import EventClip  # noqa: E402
from eventclip.runtime.onnxruntime import OnnxRuntimeBackend  # noqa: E402

REC = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return small_clip_package(tmp_path_factory.mktemp("pkg"))


@pytest.fixture(scope="module")
def bundle(package):
    return export_onnx(package, int8=True, recording=recording(REC))


def _frames(package, n=5):
    from eventclip.exporters.parity import recording_windows

    model = EventClip.from_pretrained(package).eval()
    windows, geometry = recording_windows(recording(REC), 33_000, max_windows=n)
    return model, model.representation.model_copy(update={"input_size": model.input_size})(windows, geometry)


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("batch_first", [True, False])
def test_fused_attention_equals_module_and_falls_back_when_it_cannot_fuse(batch_first):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 2, batch_first=batch_first).eval()
    fused = FusedSelfAttention(mha).eval()
    x, other = torch.randn(5, 5, 16), torch.randn(5, 5, 16)  # (B,L,E) or (L,B,E): L = B keeps one mask
    mask = torch.triu(torch.full((5, 5), float("-inf")), 1)
    with torch.no_grad():
        y, weights = fused(x, x, x, need_weights=False)
        assert weights is None
        torch.testing.assert_close(y, mha(x, x, x, need_weights=False)[0], atol=1e-6, rtol=1e-5)
        # masked and cross-attention calls take the original module's path: same result, weights when asked
        torch.testing.assert_close(fused(x, x, x, need_weights=False, attn_mask=mask)[0],
                                   mha(x, x, x, need_weights=False, attn_mask=mask)[0])
        torch.testing.assert_close(fused(x, other, other, need_weights=False)[0],
                                   mha(x, other, other, need_weights=False)[0])
        assert fused(x, x, x, need_weights=True)[1] is not None


def test_patch_embedding_as_matmul_equals_conv_and_other_convs_stay():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 4, stride=4, bias=False)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(PatchEmbedMatMul(conv, 16)(x), conv(x), atol=1e-5, rtol=1e-5)
    for odd in (nn.Conv2d(3, 8, 4, stride=4, bias=True), nn.Conv2d(3, 8, 4, stride=2, bias=False)):
        holder = nn.Module()
        holder.conv1 = odd
        rewritten, counts = cpu_encoder(holder, 16)
        assert counts["patch_embed"] == 0 and isinstance(rewritten.conv1, nn.Conv2d)


def test_cpu_encoder_equals_encoder_on_real_frames(package):
    model, x = _frames(package)
    enc, counts = cpu_encoder(model.event_encoder, model.input_size)
    assert counts == {"attention": 2, "patch_embed": 1}
    assert isinstance(model.event_encoder.conv1, nn.Conv2d), "the model itself is left as it was"
    with torch.no_grad():
        torch.testing.assert_close(enc(torch.from_numpy(x)), model.event_encoder(torch.from_numpy(x)),
                                   atol=1e-5, rtol=1e-4)


def test_cpu_graph_is_fused_checked_and_kept_apart_from_the_plain_graph(bundle):
    files = bundle.manifest["files"]
    assert files["event_encoder.cpu"]["target"] == "onnxruntime-cpu"
    assert files["event_encoder.fp32"]["target"] == "onnx"
    assert bundle.manifest["cpu_graph"] == {"attention": 2, "patch_embed": 1}
    cpu, plain, int8 = (_ops(bundle.root / n) for n in
                        ("event_encoder.cpu.onnx", "event_encoder.onnx", "event_encoder.int8.onnx"))
    assert cpu.count("MultiHeadAttention") == 2 and "Conv" not in cpu and "Softmax" not in cpu
    assert "MultiHeadAttention" not in plain and "Conv" in plain, "TensorRT's graph keeps standard ops"
    assert int8.count("MultiHeadAttention") == 2 and "Conv" not in int8, "INT8 is quantised from the CPU graph"
    assert "DynamicQuantizeLinear" in int8
    reports = {r["name"]: r for r in bundle.manifest["parity"]["reports"]}
    assert reports["event_encoder.cpu.onnx"]["max_abs"] < 1e-4 and reports["event_encoder.cpu.onnx"]["n"] >= 8


def test_backend_uses_cpu_graph_at_any_batch_and_old_bundles_still_load(bundle, package, tmp_path):
    model, x = _frames(package)
    with torch.no_grad():
        want = model.encode_frames(torch.from_numpy(x)).numpy()
    backend = OnnxRuntimeBackend(threads=1)
    backend.load(bundle.root)
    assert backend.graph.name == "event_encoder.cpu.onnx"
    for b in (1, len(x)):
        np.testing.assert_allclose(backend.encode(x[:b]), want[:b], atol=1e-5)
    int8 = OnnxRuntimeBackend(precision="int8", threads=1)
    int8.load(bundle.root)
    assert int8.graph.name == "event_encoder.int8.onnx"
    assert (int8.encode(x) * want).sum(1).min() > 0.99
    old = tmp_path / "old"
    shutil.copytree(bundle.root, old)
    manifest = json.loads((old / "export.json").read_text())
    del manifest["files"]["event_encoder.cpu"]
    (old / "export.json").write_text(json.dumps(manifest))
    (old / "event_encoder.cpu.onnx").unlink()
    plain = OnnxRuntimeBackend(threads=1)
    plain.load(old)
    assert plain.graph.name == "event_encoder.onnx"
    np.testing.assert_allclose(plain.encode(x), want, atol=1e-5)


def test_export_without_cpu_graph_quantises_the_plain_graph(package, tmp_path):
    result = export_onnx(package, tmp_path / "plain", int8=True, check=False, cpu_graph=False)
    assert "event_encoder.cpu" not in result.manifest["files"] and result.manifest["cpu_graph"] == {}
    assert not (result.root / "event_encoder.cpu.onnx").exists()
    assert "Conv" in _ops(result.root / "event_encoder.int8.onnx")
