"""The one small inference interface, the deployable bundle layout, and ``auto`` backend selection.

Why one interface: the daemon, ``classify`` and the benchmarks call ``encode`` and ``encode_text``
and must give the same labels whichever engine runs underneath (PyTorch, ONNX Runtime, TensorRT).
Every backend returns L2-normalised float32 embeddings, batch first.

Why a bundle: ``eventclip export onnx`` writes ``<package>/onnx/`` (or ``--out DIR``) holding
``event_encoder*.onnx``, ``text_encoder.onnx``, the BPE vocabulary and ``export.json`` (the facts the
runtime needs from the model card). The ONNX Runtime and TensorRT backends read only that folder,
with no torch or open_clip, so a deployment needs neither the training stack nor the weights.
Each backend is one module (``runtime/<name>.py``) registering itself with
``@BACKENDS.register(...)`` (see :mod:`eventclip.plugins`): its config model, why it cannot run
here, and its capabilities (``devices``, ``precisions``). ``auto`` is a choice, not a backend.
This module imports nothing heavy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from eventclip._optional import MissingDependencyError
from eventclip.errors import ConfigError, EventclipError
from eventclip.plugins import Registry

log = logging.getLogger(__name__)

BUNDLE_DIR = "onnx"
MANIFEST = "export.json"
VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
ENGINE_DIR = "engines"


class BackendError(EventclipError):
    """A backend cannot load or run a model; the message names the file and how to fix it."""


class UnknownBackendError(BackendError, ConfigError):
    """A backend name that no module in ``eventclip.runtime`` registered."""


@runtime_checkable
class Backend(Protocol):
    """Runs the event encoder (and the text encoder) of one model.

    ``encode(x)``: x is the preprocessed model input (B, 3, S, S) float32 (numpy, or a torch tensor;
    the TensorRT backend keeps CUDA tensors on the device); returns (B, D) float32, L2-normalised.
    ``encode_text(prompts)``: (N, D) float32, L2-normalised, for zero-shot heads.
    """

    name: str
    device: str

    def load(self, path: str | Path) -> None: ...

    def encode(self, x: Any) -> np.ndarray: ...

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@dataclass(frozen=True)
class Bundle:
    """A folder written by ``eventclip export onnx``: ONNX graphs + vocabulary + ``export.json``."""

    root: Path
    manifest: dict

    @property
    def input_size(self) -> int:
        """Model input side S in pixels (square)."""
        return int(self.manifest["input_size"])

    @property
    def context_length(self) -> int:
        """Text tower sequence length in tokens."""
        return int(self.manifest["context_length"])

    @property
    def model_hash(self) -> str:
        return str(self.manifest["model_hash"])

    def file(self, key: str) -> Path:
        """Path of the bundle file registered under ``key`` (e.g. ``event_encoder.fp32``)."""
        files = self.manifest.get("files", {})
        if key not in files:
            have = ", ".join(sorted(files)) or "none"
            raise BackendError(
                f"{self.root / MANIFEST} lists no {key!r} graph (it has: {have}). "
                f"Export it: eventclip export onnx <package> {_export_flag(key)}"
            )
        path = self.root / files[key]["path"]
        if not path.is_file():
            raise BackendError(f"{path} is listed in {self.root / MANIFEST} but missing; re-run eventclip export onnx")
        return path

    def has(self, key: str) -> bool:
        return key in self.manifest.get("files", {}) and (self.root / self.manifest["files"][key]["path"]).is_file()


def _export_flag(key: str) -> str:
    return {"event_encoder.fp16": "--fp16", "event_encoder.int8": "--int8", "fused": "--fuse-head --prompts P"}.get(
        key, ""
    ).strip()


def find_bundle(path: str | Path) -> Bundle:
    """The bundle at ``path``: an export folder itself, a model package holding ``onnx/``, or a file in one."""
    path = Path(path)
    candidates = [path, path / BUNDLE_DIR] if path.is_dir() else [path.parent]
    for root in candidates:
        manifest = root / MANIFEST
        if manifest.is_file():
            try:
                return Bundle(root, json.loads(manifest.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise BackendError(f"{manifest} is unreadable ({exc}); re-run eventclip export onnx") from exc
    if not path.exists():
        raise BackendError(f"{path} does not exist: give a model package or an ONNX export folder")
    raise BackendError(
        f"no ONNX export found at {path} (looked for {' or '.join(str(c / MANIFEST) for c in candidates)}). "
        f"Create one with: eventclip export onnx {path}"
    )


@dataclass(frozen=True)
class Choice:
    """The outcome of ``select``: which backend, and the reasons the faster ones were passed over."""

    backend: Backend
    reason: str
    skipped: tuple[str, ...] = ()


BACKENDS: Registry[type] = Registry("backend", "eventclip.runtime", extra_choices=("auto",),
                                    error=UnknownBackendError)
"""Every inference backend: one module in ``eventclip.runtime`` each (see :mod:`eventclip.plugins`)."""

def auto_order() -> tuple[str, ...]:
    """What ``auto`` tries, fastest first: the backends declaring an ``auto_rank`` capability, by rank."""
    ranked = [p for p in BACKENDS.plugins() if "auto_rank" in p.capabilities]
    return tuple(p.kind for p in sorted(ranked, key=lambda p: p.capabilities["auto_rank"]))


class AutoConfig(BaseModel):
    """``backend: {kind: auto}``: the fastest backend that can run the model (see :func:`select`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["auto"] = "auto"


def create(name: str, **config: Any) -> Backend:
    """A backend by name with its config fields; an invalid field raises ConfigError naming it."""
    cls = BACKENDS[name]
    try:
        return cls(**config)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"backend {name!r} config: {fields} "
                          f"(fields: {', '.join(cls.config_class.model_fields)})") from exc


def select(path: str | Path, backend: str = "auto", **config: Any) -> Choice:
    """Pick and load a backend for the package or bundle at ``path``.

    ``auto`` tries TensorRT (needs the ``tensorrt`` package, a GPU and a matching engine in
    ``<bundle>/engines/``), then ONNX Runtime on CUDA, then ONNX Runtime on CPU (needs an ONNX
    export), then PyTorch (needs the ``torch`` extra and the package weights). It logs the choice
    and why each faster option was skipped; ``config`` fields go to the backends that have them
    (e.g. ``precision``, ``threads``). A named backend is loaded or fails with a clear error.
    """
    if backend != "auto":
        reason = BACKENDS.unavailable(backend)
        if reason:
            raise MissingDependencyError(f"backend {backend!r}: {reason}")
        chosen = create(backend, **config)
        chosen.load(path)
        log.info("backend %s on %s (requested by name)", chosen.name, chosen.device)
        return Choice(chosen, "requested by name")
    skipped: list[str] = []
    for name in auto_order():
        reason = BACKENDS.unavailable(name) or BACKENDS[name].why_not(Path(path))
        if reason:
            skipped.append(f"{name}: {reason}")
            continue
        fields = BACKENDS[name].config_class.model_fields
        try:
            chosen = create(name, **{k: v for k, v in config.items() if k in fields})
            chosen.load(path)
        except EventclipError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        why = f"fastest available ({chosen.name} on {chosen.device})"
        log.info("backend %s chosen: %s; skipped: %s", chosen.name, why, "; ".join(skipped) or "none")
        return Choice(chosen, why, tuple(skipped))
    raise BackendError(f"no backend can run {path}: " + "; ".join(skipped))
