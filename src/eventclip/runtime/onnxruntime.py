"""ONNX Runtime backend: the event and text encoders of an export bundle, with no torch or open_clip.

Why: this is the daemon's default CPU path (and CUDA / TensorRT execution providers where
installed). It imports only numpy, onnxruntime and the torch-free tokenizer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from eventclip._optional import require
from eventclip.model.tokenizer import ClipTokenizer
from eventclip.plugins import missing
from eventclip.runtime.base import BACKENDS, VOCAB_NAME, BackendError, Bundle, find_bundle, l2_normalise

log = logging.getLogger(__name__)

_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeConfig(BaseModel):
    """Settings of the ONNX Runtime backend.

    ``precision`` picks the event-encoder graph: ``fp32``, ``fp16`` (GPU providers) or ``int8``
    (dynamic quantisation, for CPUs); FP32 on the CPU provider takes the bundle's
    ``event_encoder.cpu.onnx`` (fused attention, ONNX Runtime only) when it has one.
    ``providers`` ``auto`` means CUDA when available, else CPU (TensorRT's execution provider only
    when asked for by name, since it builds engines on start).
    ``threads`` = 0 lets ONNX Runtime decide the intra-op thread count.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["onnxruntime"] = "onnxruntime"
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    providers: list[str] | Literal["auto"] = "auto"
    threads: int = Field(0, ge=0)


def _session(path: Path, providers: list[str], threads: int, fp16: bool = False) -> Any:
    ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
    opts = ort.SessionOptions()
    if fp16 and providers[:1] == ["CPUExecutionProvider"]:
        # onnxruntime 1.32 crashes applying its CPU layout optimisations (level ALL) to FP16 graphs
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt graphs
        raise BackendError(
            f"ONNX Runtime cannot load {path}: {exc}. The file is corrupt or not an ONNX model; "
            "re-create it with eventclip export onnx"
        ) from exc


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x, dtype=np.float32)
    if hasattr(x, "detach"):  # a torch tensor handed over by a torch-based caller
        return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def unavailable() -> str | None:
    """None when onnxruntime is installed (checked without importing it)."""
    return missing("onnxruntime", "pip install 'eventclip[onnx]'")


@BACKENDS.register(config=OnnxRuntimeConfig, unavailable=unavailable,
                   capabilities={"devices": ("cpu", "cuda"), "precisions": ("fp32", "fp16", "int8"), "auto_rank": 2,
                                 "input": "numpy"})
class OnnxRuntimeBackend:
    """Backend over ``event_encoder.<precision>.onnx`` and ``text_encoder.onnx`` of a bundle.

    ``graph`` is the event-encoder file that ``load`` opened (for logs and status pages).
    """

    config_class = OnnxRuntimeConfig
    name = "onnxruntime"

    @staticmethod
    def why_not(path: Path) -> str:
        """Why ``auto`` cannot use this backend for ``path`` ("" when it can): it needs an ONNX export."""
        try:
            find_bundle(path)
        except BackendError as exc:
            return str(exc)
        return ""

    def __init__(self, **config: Any) -> None:
        self.config = OnnxRuntimeConfig(**config)
        self.device = "cpu"
        self.bundle: Bundle | None = None
        self.graph: Path | None = None
        self._event: Any = None
        self._text: Any = None
        self._tokenizer: ClipTokenizer | None = None

    def _providers(self) -> list[str]:
        ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
        have = ort.get_available_providers()
        if self.config.providers != "auto":
            missing = [p for p in self.config.providers if p not in have]
            if missing:
                raise BackendError(
                    f"ONNX Runtime providers {missing} are not available here (have {have}); "
                    "install onnxruntime-gpu for CUDA/TensorRT or set providers: auto"
                )
            return list(self.config.providers)
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if self.config.precision == "int8":  # dynamic INT8 kernels are CPU kernels
            wanted = ["CPUExecutionProvider"]
        return [p for p in wanted if p in have]

    def load(self, path: str | Path, *, text_only: bool = False) -> None:
        """Open the bundle at ``path`` (export folder, or model package holding ``onnx/``).

        ``text_only`` skips the event encoder (for callers that run frames elsewhere, e.g. TensorRT).
        """
        self.bundle = find_bundle(path)
        if text_only:
            return
        providers = self._providers()
        self.graph = self.bundle.file(self._event_key(providers))
        self._event = _session(self.graph, providers, self.config.threads, fp16=self.config.precision == "fp16")
        used = self._event.get_providers()
        self.device = "cuda" if any(p in used for p in _PROVIDER_ORDER[:2]) else "cpu"
        log.info("onnxruntime: %s on %s", self.graph.name, used)

    @property
    def session_threads(self) -> int | None:
        """Intra-op threads the event-encoder session was created with, read back from ONNX Runtime
        (0: its default, one per core); None before :meth:`load`."""
        if self._event is None:
            return None
        return int(self._event.get_session_options().intra_op_num_threads)

    def _event_key(self, providers: list[str]) -> str:
        """Manifest key of the event-encoder graph for this precision and these providers.

        The CPU form holds contrib ops that only ONNX Runtime's CPU kernels are tested with, so it is
        taken only when the CPU provider is the first (or only) one.
        """
        key = f"event_encoder.{self.config.precision}"
        cpu_first = providers[:1] == ["CPUExecutionProvider"]
        if key == "event_encoder.fp32" and cpu_first and self.bundle.has("event_encoder.cpu"):
            return "event_encoder.cpu"
        return key

    def encode(self, x: Any) -> np.ndarray:
        """(B,3,S,S) float32 model input -> (B,D) L2-normalised embeddings."""
        if self._event is None:
            raise BackendError("call load(path) before encode")
        x = _to_numpy(x)
        s = self.bundle.input_size
        if x.ndim != 4 or x.shape[1:] != (3, s, s):
            raise BackendError(f"encoder input must be (B, 3, {s}, {s}) float32, got {x.shape}")
        (y,) = self._event.run(None, {"frames": x})
        return l2_normalise(y)

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        """(N,D) L2-normalised text embeddings from ``text_encoder.onnx`` and the bundled vocabulary."""
        if self.bundle is None:
            raise BackendError("call load(path) before encode_text")
        if self._text is None:
            self._text = _session(self.bundle.file("text_encoder"), ["CPUExecutionProvider"], self.config.threads)
            vocab = self.bundle.root / VOCAB_NAME
            if not vocab.is_file():
                raise BackendError(f"{vocab} is missing from the export; re-run eventclip export onnx")
            self._tokenizer = ClipTokenizer(vocab, self.bundle.context_length)
        tokens = self._tokenizer(list(prompts))
        (y,) = self._text.run(None, {"tokens": tokens})
        return l2_normalise(y)
