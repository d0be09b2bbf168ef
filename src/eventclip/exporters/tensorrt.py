"""Build TensorRT engines from an export bundle's ONNX graphs (FP32, FP16, INT8 via explicit Q/DQ).

Why these choices:

* Strongly typed networks (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``): TensorRT 10.12
  deprecates weak typing and TensorRT 11 removes the FP16/INT8 builder flags, so precision comes
  from the graph: ``event_encoder.fp16.onnx`` (FP16 math, FP32 LayerNorm) for ``--fp16`` and a Q/DQ
  graph calibrated on real recordings for ``--int8``. One code path works on TensorRT 10 and 11.
* One optimisation profile over the batch axis (``--batch min,opt,max``).
* A persistent timing cache (``engines/timing.cache``) so rebuilds skip tactic timing.
* A sidecar JSON beside every engine, checked by the runtime before loading (see
  :mod:`eventclip.runtime.tensorrt`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eventclip._optional import require
from eventclip.errors import EventclipError
from eventclip.model.card import representation_from, sha256_file
from eventclip.runtime.base import ENGINE_DIR, MANIFEST, find_bundle
from eventclip.runtime.tensorrt import engine_path, machine_info, sidecar_path

if TYPE_CHECKING:
    from eventclip.exporters.parity import ParityReport

log = logging.getLogger(__name__)

TIMING_CACHE = "timing.cache"
WORKSPACE_BYTES = 4 << 30


class EngineBuildError(EventclipError):
    """TensorRT could not parse or build; the message names the ONNX file and the parser errors."""


@dataclass(frozen=True)
class EngineBuild:
    engine: Path
    sidecar: dict
    seconds: float


def parse_batch(text: str) -> tuple[int, int, int]:
    """``"1,8,32"`` -> (1, 8, 32); raises EngineBuildError unless 1 <= min <= opt <= max."""
    try:
        lo, opt, hi = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise EngineBuildError(f"--batch {text!r}: expected three integers min,opt,max such as 1,8,32") from exc
    if not 1 <= lo <= opt <= hi:
        raise EngineBuildError(f"--batch {text!r}: need 1 <= min <= opt <= max")
    return lo, opt, hi


def source_graph(onnx_or_bundle: str | Path, precision: str, calib: Sequence[str | Path] = ()) -> tuple[Path, Path]:
    """(bundle root, ONNX graph to build) for ``precision``; INT8 writes the calibrated Q/DQ graph first."""
    path = Path(onnx_or_bundle)
    bundle = find_bundle(path)
    if precision == "fp32":
        return bundle.root, (path if path.suffix == ".onnx" else bundle.file("event_encoder.fp32"))
    if precision == "fp16":
        return bundle.root, bundle.file("event_encoder.fp16")
    from eventclip.exporters.quantize import calibration_batches, quantize_qdq_int8

    rep = representation_from(bundle.manifest["representation"], str(bundle.root / MANIFEST))
    qdq = bundle.root / "event_encoder.qdq.onnx"
    quantize_qdq_int8(bundle.file("event_encoder.fp32"), qdq, calibration_batches(list(calib), rep))
    manifest = dict(bundle.manifest)
    manifest["files"] = dict(manifest["files"], **{"event_encoder.qdq": {
        "path": qdq.name, "precision": "int8", "sha256": sha256_file(qdq), "calibration": [str(c) for c in calib]}})
    (bundle.root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return bundle.root, qdq


def build_engine(
    onnx_or_bundle: str | Path,
    *,
    precision: str = "fp16",
    calib: Sequence[str | Path] = (),
    batch: tuple[int, int, int] = (1, 8, 32),
    out: str | Path | None = None,
    device: int = 0,
) -> EngineBuild:
    """Build ``engines/event_encoder.<precision>.engine`` (or ``out``) with its sidecar and timing cache."""
    trt = require("tensorrt", "tensorrt", "building TensorRT engines")
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineBuildError(f"unknown precision {precision!r}; use fp32, fp16 or int8")
    if precision == "int8" and not calib:
        raise EngineBuildError("--int8 needs --calib RECORDING [...]: real recordings to calibrate the Q/DQ scales")
    machine = machine_info(device)
    root, graph = source_graph(onnx_or_bundle, precision, calib)
    bundle = find_bundle(root)
    s = bundle.input_size
    engine_file = Path(out) if out is not None else engine_path(root, precision)
    engine_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file = root / ENGINE_DIR / TIMING_CACHE

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT cannot parse {graph}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    lo, opt, hi = batch
    profile.set_shape("frames", (lo, 3, s, s), (opt, 3, s, s), (hi, 3, s, s))
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    config.set_timing_cache(cache, False)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {graph} (see the TensorRT log above)")
    engine_file.write_bytes(bytes(serialized))
    cache_file.write_bytes(bytes(cache.serialize()))  # the attached cache, augmented by this build
    sidecar = {
        **machine,
        "precision": precision,
        "batch": [lo, opt, hi],
        "input_size": s,
        "model_hash": bundle.model_hash,
        "source_onnx": str(graph),
        "source_onnx_sha256": sha256_file(graph),
        "build_seconds": round(seconds, 1),
        "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    sidecar_path(engine_file).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    log.info("built %s in %.1f s", engine_file, seconds)
    return EngineBuild(engine_file, sidecar, seconds)


def check_engine(engine: Path, recording: str | Path, precision: str, device: int = 0) -> ParityReport:
    """Parity of a built engine against ONNX Runtime FP32 (itself checked against PyTorch at export)
    on frames from a real recording; raises ParityError past the precision's tolerance."""
    import numpy as np

    from eventclip.exporters.parity import PARITY_PROMPTS, compare, recording_windows
    from eventclip.runtime.onnxruntime import OnnxRuntimeBackend
    from eventclip.runtime.tensorrt import TensorRTBackend

    trt_backend = TensorRTBackend(engine=engine, precision=precision, device=device)
    trt_backend.load(engine)
    ort_backend = OnnxRuntimeBackend(providers=["CPUExecutionProvider"])
    ort_backend.load(trt_backend.bundle.root)
    rep = representation_from(trt_backend.bundle.manifest["representation"], str(trt_backend.bundle.root / MANIFEST))
    windows, geometry = recording_windows(recording, rep.window_us)
    x = rep(windows, geometry)
    lo, _, hi = trt_backend.sidecar["batch"]
    n = max(lo, min(hi, len(x)))
    x = np.resize(x, (n, *x.shape[1:])) if len(x) < n else x[:n]
    text = ort_backend.encode_text(list(PARITY_PROMPTS))
    report = compare(ort_backend.encode(x), trt_backend.encode(x), text, name=engine.name, precision=precision)
    log.info("parity %s", report)
    return report.check()
