"""INT8 quantisation of the event encoder: ONNX Runtime dynamic INT8 (CPU) and static Q/DQ (TensorRT).

Why two kinds:

* dynamic (``quantize_dynamic_int8``): weights of MatMul/Gemm stored as INT8, activations quantised
  on the fly per batch; no calibration data; ONNX Runtime's CPU kernels (``MatMulInteger``) make
  ViT inference several times faster on CPUs.
* static Q/DQ (``quantize_qdq_int8``): explicit QuantizeLinear/DequantizeLinear pairs with symmetric
  scales calibrated on event frames from real recordings. TensorRT 10 deprecates implicit INT8
  calibrators (TensorRT 11 removes them); a strongly typed engine built from this graph runs the
  quantised MatMuls/Convs in INT8 exactly where the graph says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventclip._optional import require
from eventclip.errors import EventclipError

log = logging.getLogger(__name__)

INT8_OPS = ["MatMul", "Gemm"]
"""Ops quantised for CPU: the transformer's projections and MLPs carry nearly all of a ViT's work.
The patch-embedding Conv stays FP32 (ConvInteger is slow on ONNX Runtime's CPU provider)."""


class QuantizeError(EventclipError):
    """Quantisation could not run; the message names the file or the calibration data."""


def quantize_dynamic_int8(src: str | Path, dst: str | Path, *, per_channel: bool = True) -> Path:
    """Write ``dst``: ``src`` with dynamic INT8 MatMul/Gemm weights (ONNX Runtime CPU)."""
    q = require("onnxruntime.quantization", "onnx", "INT8 quantisation")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise QuantizeError(f"{src} does not exist; export the FP32 graph first (eventclip export onnx)")
    try:
        q.quantize_dynamic(src, dst, op_types_to_quantize=INT8_OPS, per_channel=per_channel,
                           weight_type=q.QuantType.QInt8)
    except Exception as exc:  # onnxruntime raises untyped errors for graphs it cannot read
        raise QuantizeError(f"cannot quantise {src}: {exc}") from exc
    return dst


class _FramesReader:
    """ONNX Runtime CalibrationDataReader over model inputs built from real recordings."""

    def __init__(self, batches: Iterable[np.ndarray], input_name: str) -> None:
        self._it = iter(batches)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self._name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self) -> None:  # ORT >= 1.17 may call it; a one-shot reader is enough for MinMax
        return None


def calibration_batches(recordings: Sequence[str | Path], representation: Any, *, windows_per_file: int = 32,
                        batch: int = 8) -> list[np.ndarray]:
    """Model inputs (B,3,S,S) from windows of real recordings, for static calibration."""
    from eventclip.exporters.parity import recording_windows

    if not recordings:
        raise QuantizeError("INT8 calibration needs at least one real recording (--calib FILE [FILE ...])")
    frames = []
    for path in recordings:
        windows, geometry = recording_windows(path, representation.window_us, max_windows=windows_per_file)
        frames.append(representation(windows, geometry))
    x = np.concatenate(frames)
    return [x[i : i + batch] for i in range(0, len(x), batch)]


def quantize_qdq_int8(src: str | Path, dst: str | Path, batches: Sequence[np.ndarray], *,
                      input_name: str = "frames") -> Path:
    """Write ``dst``: ``src`` with symmetric INT8 Q/DQ pairs on MatMul/Gemm/Conv, scales from ``batches``.

    Symmetric activations and weights (zero point 0), per-output-channel weight scales (MatMul axis 1)
    and float biases (no INT32 bias dequantisation) are what TensorRT's explicit quantisation accepts.
    """
    q = require("onnxruntime.quantization", "onnx", "INT8 quantisation")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise QuantizeError(f"{src} does not exist; export the FP32 graph first (eventclip export onnx)")
    if not batches:
        raise QuantizeError("no calibration frames: the recordings gave no window with events")
    try:
        q.quantize_static(
            src, dst, _FramesReader(batches, input_name), quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=[*INT8_OPS, "Conv"], per_channel=True,
            activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                           "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}},
        )
    except QuantizeError:
        raise
    except Exception as exc:
        raise QuantizeError(f"cannot calibrate/quantise {src}: {exc}") from exc
    return dst
