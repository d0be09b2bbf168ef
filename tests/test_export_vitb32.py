"""One export of a random-weight ViT-B/32 (CLIP's most deployed size): FP32 parity on real frames.

INT8 agreement is measured on the trained default model (test_export_default.py) and by
benchmarks/bench_encoder.py: on random weights zero-shot scores are near ties, so top-1 is fragile."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import recording

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("onnxruntime")

from eventclip.exporters.onnx import export_onnx  # noqa: E402
from eventclip.model.clip import EventClip  # noqa: E402
from eventclip.runtime.onnxruntime import OnnxRuntimeBackend  # noqa: E402

REC = "prophesee_evt2_sparklers_gen3_640x480.raw"


def test_vit_b32_exports_with_parity(tmp_path):
    model = EventClip.from_clip("ViT-B-32", seed=0, with_image_encoder=False)
    result = export_onnx(model, tmp_path / "vitb32", recording=recording(REC), parity_windows=8)
    reports = {r.name: r for r in result.reports}
    fp32 = reports["event_encoder.onnx"]
    assert fp32.n == 8 and fp32.max_abs < 1e-4 and fp32.top1 == 1.0
    assert reports["text_encoder.onnx"].max_abs < 1e-4
    backend = OnnxRuntimeBackend()
    backend.load(result.root)
    assert backend.encode(np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 512)
    assert backend.encode_text(["a dog"]).shape == (1, 512)
