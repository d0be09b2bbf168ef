"""TensorRT backend: a serialized engine, fed device tensors without a copy, on a CUDA stream.

Why: on NVIDIA GPUs the frames come from the CUDA accumulator as torch CUDA tensors; handing their
device pointers straight to ``IExecutionContext.set_tensor_address`` and launching with
``execute_async_v3`` on torch's current stream keeps the whole path on the GPU.

Engines are specific to the TensorRT version and the GPU they were built on. Beside every engine
``eventclip export tensorrt`` writes a sidecar JSON (``<engine>.json``): source ONNX sha256, model hash,
TensorRT version, GPU name, compute capability, precision and batch profile. :func:`check_sidecar`
refuses an engine whose sidecar does not match this machine, saying how to rebuild it.
Text prompts are encoded by ONNX Runtime from the same bundle (once per prompt set, CPU is fine).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from eventclip._optional import require
from eventclip.plugins import missing
from eventclip.runtime.base import BACKENDS, ENGINE_DIR, BackendError, Bundle, find_bundle
from eventclip.runtime.onnxruntime import OnnxRuntimeBackend

log = logging.getLogger(__name__)

SIDECAR_KEYS = ("tensorrt_version", "gpu_name", "compute_capability")


class EngineMismatchError(BackendError):
    """The engine was built for another GPU or TensorRT version (or is missing its sidecar)."""


class TensorRTConfig(BaseModel):
    """Settings of the TensorRT backend: ``precision`` picks ``engines/event_encoder.<precision>.engine``
    in the bundle unless ``engine`` names a file (left unset: the first built of fp16, int8, fp32);
    ``device`` is the CUDA device index."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["tensorrt"] = "tensorrt"
    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    engine: Path | None = None
    device: int = 0


def machine_info(device: int = 0) -> dict[str, str]:
    """TensorRT version, GPU name and compute capability of this machine (what an engine depends on)."""
    trt = require("tensorrt", "tensorrt", "TensorRT engines")
    torch = require("torch", "torch", "CUDA device queries for TensorRT")
    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs a CUDA GPU and none is visible (check CUDA_VISIBLE_DEVICES and the driver)")
    major, minor = torch.cuda.get_device_capability(device)
    return {"tensorrt_version": trt.__version__, "gpu_name": torch.cuda.get_device_name(device),
            "compute_capability": f"{major}.{minor}"}


def engine_path(bundle_root: Path, precision: str) -> Path:
    """Where ``eventclip export tensorrt`` puts the engine of ``precision`` for a bundle."""
    return bundle_root / ENGINE_DIR / f"event_encoder.{precision}.engine"


def sidecar_path(engine: Path) -> Path:
    return engine.with_suffix(engine.suffix + ".json")


def rebuild_hint(sidecar: dict) -> str:
    """The command that rebuilds the engine described by ``sidecar`` on this machine."""
    flags = {"fp16": " --fp16",
             "int8": " --int8 --calib RECORDING [RECORDING ...]"}.get(sidecar.get("precision", ""), "")
    batch = sidecar.get("batch")
    if batch:
        flags += f" --batch {','.join(str(b) for b in batch)}"
    return f"eventclip export tensorrt {sidecar.get('source_onnx', '<bundle>/event_encoder.onnx')}{flags}"


def check_sidecar(engine: Path, sidecar: dict, machine: dict[str, str], model_hash: str | None = None) -> None:
    """Raise EngineMismatchError unless ``sidecar`` matches ``machine`` (and the bundle's model hash)."""
    diffs = [f"{k}: engine {sidecar.get(k)!r}, here {machine[k]!r}"
             for k in SIDECAR_KEYS if sidecar.get(k) != machine[k]]
    if model_hash is not None and sidecar.get("model_hash") not in (None, model_hash):
        diffs.append(f"model_hash: engine {sidecar.get('model_hash')!r}, bundle {model_hash!r}")
    if diffs:
        raise EngineMismatchError(
            f"{engine} does not match this machine or model ({'; '.join(diffs)}). TensorRT engines only run on "
            f"the GPU type and TensorRT version that built them. Rebuild it here: {rebuild_hint(sidecar)}"
        )


def read_sidecar(engine: Path) -> dict:
    path = sidecar_path(engine)
    if not path.is_file():
        raise EngineMismatchError(
            f"{engine} has no sidecar {path.name}: cannot tell which GPU and TensorRT version built it. "
            "Rebuild it with eventclip export tensorrt, which writes the sidecar"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineMismatchError(
            f"{path} is unreadable ({exc}); rebuild the engine with eventclip export tensorrt") from exc


def unavailable() -> str | None:
    """None when tensorrt and torch (CUDA memory and streams) are installed, checked without importing them."""
    return (missing("tensorrt", "pip install 'eventclip[tensorrt]'")
            or missing("torch", "the TensorRT backend uses torch for CUDA memory and streams "
                                "(pip install 'eventclip[torch]')"))


@BACKENDS.register(config=TensorRTConfig, unavailable=unavailable,
                   capabilities={"devices": ("cuda",), "precisions": ("fp32", "fp16", "int8"), "auto_rank": 1,
                                 "input": "torch"})
class TensorRTBackend:
    """Backend over a TensorRT engine; ``encode_device`` keeps CUDA tensors on the GPU end to end."""

    config_class = TensorRTConfig
    name = "tensorrt"

    @staticmethod
    def why_not(path: Path) -> str:
        """Why ``auto`` cannot use this backend for ``path`` ("" when it can): a GPU and a built engine."""
        import torch  # heavy, optional: installed (the registry checked), imported only when auto asks

        if not torch.cuda.is_available():
            return "no CUDA device"
        try:
            bundle = find_bundle(path)
        except BackendError as exc:
            return str(exc)
        if not any((bundle.root / ENGINE_DIR).glob("*.engine")):
            return (f"no engine in {bundle.root / ENGINE_DIR} "
                    f"(build one: eventclip export tensorrt {bundle.root}/event_encoder.onnx)")
        return ""

    def __init__(self, **config: Any) -> None:
        self.config = TensorRTConfig(**config)
        self.device = f"cuda:{self.config.device}"
        self.bundle: Bundle | None = None
        self.sidecar: dict = {}
        self._engine: Any = None
        self._context: Any = None
        self._input = self._output = ""
        self._text: Any = None

    def load(self, path: str | Path) -> None:
        """Load an engine file, or the engine of ``precision`` from a bundle or package folder."""
        trt = require("tensorrt", "tensorrt", "the TensorRT backend")
        path = Path(path)
        if path.suffix == ".engine":
            engine = path
            bundle_dir = path.parent.parent if path.parent.name == ENGINE_DIR else path.parent
        else:
            self.bundle = find_bundle(path)
            engine = self.config.engine or self._default_engine(self.bundle.root)
            bundle_dir = self.bundle.root
        if not engine.is_file():
            raise BackendError(f"no TensorRT engine at {engine}; build it: eventclip export tensorrt "
                               f"{bundle_dir}/event_encoder.onnx --{self.config.precision}")
        if self.bundle is None:
            try:
                self.bundle = find_bundle(bundle_dir)
            except BackendError:
                self.bundle = None  # a bare engine still encodes frames; encode_text then reports the missing bundle
        self.sidecar = read_sidecar(engine)
        check_sidecar(engine, self.sidecar, machine_info(self.config.device),
                      self.bundle.model_hash if self.bundle is not None else None)
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(engine.read_bytes())
        if self._engine is None:
            raise BackendError(f"TensorRT could not deserialize {engine} (corrupt file?); "
                               f"rebuild: {rebuild_hint(self.sidecar)}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or not outputs:
            raise BackendError(f"{engine}: expected one input and an output, found inputs {inputs}, outputs {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        log.info("tensorrt: %s (%s) on %s", engine.name, self.sidecar.get("precision"), self.sidecar.get("gpu_name"))

    def _default_engine(self, root: Path) -> Path:
        """The engine of the configured precision; with none configured, the first built of fp16, int8, fp32."""
        if "precision" in self.config.model_fields_set:
            return engine_path(root, self.config.precision)
        for precision in ("fp16", "int8", "fp32"):
            if engine_path(root, precision).is_file():
                return engine_path(root, precision)
        return engine_path(root, self.config.precision)

    def encode_device(self, x: Any, stream: Any = None) -> Any:
        """(B,3,S,S) torch CUDA tensor -> (B,D) float32 CUDA tensor, L2-normalised; no host copy.

        The engine reads ``x``'s memory in place (made contiguous float32 on the device if it is not)
        and runs on ``stream`` (default: torch's current stream), so work queued earlier on that
        stream, such as the frame accumulation, is ordered before it without a sync; a different
        ``stream`` first waits for the current one. The result is ready once ``stream`` reaches it.
        """
        torch = require("torch", "torch", "device tensors for TensorRT")
        if self._context is None:
            raise BackendError("call load(path) before encode")
        x = torch.as_tensor(x)
        if not x.is_cuda:
            x = x.to(self.device, non_blocking=True)
        x = x.to(torch.float32).contiguous()
        batch = int(x.shape[0])
        lo, _, hi = self.sidecar.get("batch", [1, 1, batch])
        if not lo <= batch <= hi:
            raise BackendError(f"batch {batch} is outside the engine's profile [{lo}, {hi}]; rebuild with --batch "
                               f"{lo},{max(lo, min(hi, batch))},{max(hi, batch)}")
        current = torch.cuda.current_stream(x.device)
        stream = stream or current
        if stream != current:  # x was produced on the current stream: order the engine after it, keep x alive
            stream.wait_stream(current)
            x.record_stream(stream)
        with torch.cuda.stream(stream):
            if not self._context.set_input_shape(self._input, tuple(x.shape)):
                raise BackendError(f"engine rejects input shape {tuple(x.shape)}")
            shape = tuple(self._context.get_tensor_shape(self._output))
            out = torch.empty(shape, dtype=torch.float32, device=x.device)
            self._context.set_tensor_address(self._input, x.data_ptr())
            self._context.set_tensor_address(self._output, out.data_ptr())
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
            return torch.nn.functional.normalize(out, dim=-1)

    def encode(self, x: Any) -> np.ndarray:
        """(B,3,S,S) numpy or torch tensor -> (B,D) float32 L2-normalised numpy embeddings."""
        y = self.encode_device(x)
        return y.cpu().numpy()

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        """Text embeddings by ONNX Runtime from the engine's bundle (text is encoded once per prompt set)."""
        if self.bundle is None:
            raise BackendError("encode_text needs the ONNX bundle beside the engine (<bundle>/engines/*.engine)")
        if self._text is None:
            self._text = OnnxRuntimeBackend(providers=["CPUExecutionProvider"])
            self._text.load(self.bundle.root, text_only=True)
        return self._text.encode_text(prompts)
