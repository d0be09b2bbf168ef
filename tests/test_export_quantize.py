"""INT8: ONNX Runtime dynamic quantisation and calibrated symmetric Q/DQ graphs (the TensorRT INT8 input)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import recording

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from eventclip.exporters.onnx import export_onnx  # noqa: E402
from eventclip.exporters.quantize import QuantizeError, calibration_batches, quantize_dynamic_int8, quantize_qdq_int8  # noqa: E402
from eventclip.exporters.tensorrt import source_graph  # noqa: E402
from eventclip.model.clip import EventClip  # noqa: E402

SMALL = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CALIB = ["prophesee_evt2_sparklers_gen3_640x480.raw", "inivation_dvxplorer_320x240.aedat4"]
TEST = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = EventClip.from_clip(SMALL, seed=5, with_image_encoder=False)
    out = tmp_path_factory.mktemp("bundle")
    export_onnx(model, out, recording=recording(TEST))
    return model, out


def _embed(path, x):
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"frames": x})
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def test_qdq_graph_is_symmetric_and_tracks_fp32(exported):
    model, out = exported
    rep = model.representation.model_copy(update={"input_size": model.input_size})
    root, qdq = source_graph(out, "int8", [recording(c) for c in CALIB])
    assert qdq.name == "event_encoder.qdq.onnx"
    manifest = json.loads((root / "export.json").read_text())
    assert manifest["files"]["event_encoder.qdq"]["calibration"][0].endswith(CALIB[0])
    graph = onnx.load(str(qdq)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 8 and "DequantizeLinear" in ops
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    zero_points = [consts[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(np.all(z == 0) for z in zero_points), "TensorRT needs zero points of 0"
    dq_consts = [consts[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in consts]
    assert dq_consts and all(c.dtype == np.int8 for c in dq_consts), "INT8 weights only; biases stay float"
    from eventclip.exporters.parity import recording_windows

    windows, geometry = recording_windows(recording(TEST), 33_000)
    x = rep(windows, geometry)
    cos = (_embed(qdq, x) * _embed(out / "event_encoder.onnx", x)).sum(1)
    assert cos.min() > 0.95, cos


def test_dynamic_int8_quantises_matmuls(exported, tmp_path):
    _, out = exported
    dst = quantize_dynamic_int8(out / "event_encoder.onnx", tmp_path / "q.onnx")
    ops = {n.op_type for n in onnx.load(str(dst)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, ops
    assert dst.stat().st_size < 0.7 * (out / "event_encoder.onnx").stat().st_size


def test_bad_inputs(exported, tmp_path):
    model, out = exported
    with pytest.raises(QuantizeError, match="does not exist"):
        quantize_dynamic_int8(tmp_path / "none.onnx", tmp_path / "q.onnx")
    with pytest.raises(QuantizeError, match="at least one real recording"):
        calibration_batches([], model.representation)
    with pytest.raises(QuantizeError, match="no calibration frames"):
        quantize_qdq_int8(out / "event_encoder.onnx", tmp_path / "q.onnx", [])
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(QuantizeError, match="bad.onnx"):
        quantize_dynamic_int8(tmp_path / "bad.onnx", tmp_path / "q2.onnx")
