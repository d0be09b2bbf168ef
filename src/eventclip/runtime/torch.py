"""PyTorch backend: the model package itself, on CPU or CUDA.

Why: the reference every exported backend is checked against, and the fallback when no ONNX export
exists. Needs the ``torch`` extra (torch + open_clip).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from eventclip._optional import require
from eventclip.plugins import missing
from eventclip.runtime.base import BACKENDS, BackendError


class TorchConfig(BaseModel):
    """Settings of the PyTorch backend: ``device`` ``auto`` = CUDA when available, else CPU;
    ``precision`` ``fp16`` runs the encoder in half precision (CUDA only)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["torch"] = "torch"
    device: str = "auto"
    precision: Literal["fp32", "fp16"] = "fp32"


def unavailable() -> str | None:
    """None when torch and open_clip are installed (checked without importing them)."""
    return missing(("torch", "open_clip"), "pip install 'eventclip[torch]'")


@BACKENDS.register(config=TorchConfig, unavailable=unavailable,
                   capabilities={"devices": ("cpu", "cuda"), "precisions": ("fp32", "fp16"), "auto_rank": 3,
                                 "input": "torch"})
class TorchBackend:
    """Backend over ``EventClip.from_pretrained(package)``."""

    config_class = TorchConfig
    name = "torch"

    @staticmethod
    def why_not(path: Path) -> str:
        """Why ``auto`` cannot use this backend for ``path`` ("" when it can): it needs a model package."""
        if not (path / "model.json").is_file():
            return f"{path} is not a model package (no model.json)"
        return ""

    def __init__(self, **config: Any) -> None:
        self.config = TorchConfig(**config)
        self.device = "cpu"
        self.model: Any = None

    def load(self, path: str | Path) -> None:
        """Load the model package at ``path`` (hashes verified by the package loader)."""
        torch = require("torch", "torch", "the PyTorch backend")
        from eventclip.model.clip import EventClip  # imports torch and open_clip: only when loading

        dev = self.config.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if self.config.precision == "fp16" and not dev.startswith("cuda"):
            raise BackendError("torch precision fp16 needs a CUDA device (set device: cuda, or precision: fp32)")
        model = EventClip.from_pretrained(path, map_location=dev).eval()
        if self.config.precision == "fp16":
            model.event_encoder.half()
        self.model, self.device = model, dev

    def encode(self, x: Any) -> np.ndarray:
        """(B,3,S,S) numpy or tensor -> (B,D) float32 L2-normalised numpy embeddings."""
        return self.encode_tensor(x).float().cpu().numpy()

    def encode_tensor(self, x: Any) -> Any:
        """Like :meth:`encode` but returns a tensor on the model's device (no host copy)."""
        import torch

        if self.model is None:
            raise BackendError("call load(path) before encode")
        dtype = torch.float16 if self.config.precision == "fp16" else torch.float32
        with torch.no_grad():
            t = torch.as_tensor(x).to(self.device, dtype)
            return torch.nn.functional.normalize(self.model.event_encoder(t).float(), dim=-1)

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        """(N,D) L2-normalised text embeddings from the package's text tower."""
        if self.model is None:
            raise BackendError("call load(path) before encode_text")
        return self.model.encode_text(list(prompts)).float().cpu().numpy()
