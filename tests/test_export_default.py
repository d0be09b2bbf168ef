"""The shipped default model: ONNX export with parity, and INT8 vs FP32 top-1 agreement on the sample recording."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from eventclip.errors import EventclipError  # noqa: E402


@pytest.fixture(scope="module")
def shipped():
    from eventclip.data import default_model_path, sample_recording_path

    try:
        return default_model_path(), sample_recording_path()
    except EventclipError as exc:
        pytest.skip(f"default model or sample recording not shipped yet: {exc}")


def test_default_model_exports_and_int8_agrees(shipped, tmp_path):
    import json

    from eventclip.data import sample_labels_path
    from eventclip.exporters.onnx import export_onnx

    package, sample = shipped
    texts = sorted({seg["text"] for seg in json.loads(sample_labels_path().read_text())["segments"]})
    result = export_onnx(package, tmp_path / "bundle", int8=True, recording=sample, prompts=texts, parity_windows=64)
    reports = {r.name: r for r in result.reports}
    assert reports["event_encoder.onnx"].top1 == 1.0
    int8 = reports["event_encoder.int8.onnx"]
    print(f"default model INT8 vs torch on the sample, {len(texts)} ground-truth texts: {int8}")
    assert int8.top1 >= 0.9 and int8.mean_cosine > 0.99
    from eventclip.runtime import select

    choice = select(tmp_path / "bundle", "onnxruntime", precision="int8")
    assert np.isfinite(choice.backend.encode_text(["a dog"])).all()
