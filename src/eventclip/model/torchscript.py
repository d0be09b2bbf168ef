"""Read the weights out of a TorchScript archive (OpenAI's CLIP ``.pt`` files) without running its code.

Why not ``torch.jit.load``: a TorchScript archive carries code that ``jit.load`` compiles and runs,
and a user-supplied ``.pt`` should not be able to run anything. The weights themselves sit in
``<archive>/data.pkl`` (a pickle of the module tree) and ``<archive>/data/<n>`` (raw storages).
We unpickle ``data.pkl`` with an allowlist: module classes (``__torch__.*``) become inert records
of their attributes, tensors are rebuilt from the raw storages, and any other global is refused.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from eventclip.model.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_NOT_WEIGHTS = {"attn_mask", "input_resolution", "context_length", "vocab_size"}
"""Tensor attributes of OpenAI's JIT modules that are not part of the state dict."""


class _Record:
    """Stand-in for a scripted module: keeps its attribute dict, has no behaviour."""

    def __setstate__(self, state: Any) -> None:
        self.attrs = state if isinstance(state, dict) else {}


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> torch.Tensor:
    """A tensor over ``storage`` (a flat tensor); a view when it covers the storage contiguously, else a copy."""
    size, stride = tuple(size), tuple(stride)
    contiguous, step = [], 1
    for dim in reversed(size):
        contiguous.insert(0, step)
        step *= dim
    if offset == 0 and storage.numel() == step and tuple(contiguous) == stride:
        return storage.view(size)
    return torch.as_strided(storage, size, stride, offset).clone()


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, fh, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(fh)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _Record
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise CheckpointError(
            f"{self.path}: TorchScript archive references {module}.{name}, which is not a weight; refusing to "
            "load it (only module records, tensors and storages are allowed)"
        )

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected persistent id {pid!r} in data.pkl")
        storage_type, key = pid[1], pid[2]
        name = f"{self.prefix}data/{key}"
        try:
            raw = bytearray(self.archive.read(name))
        except KeyError as exc:
            raise CheckpointError(f"{self.path}: storage {name} is missing from the archive") from exc
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else torch.float32
        return torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)


def is_torchscript(path: str | Path) -> bool:
    """True when ``path`` is a zip holding TorchScript code (``*/code/``) beside ``data.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in n for n in archive.namelist())


def read_torchscript_state(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict (``visual.conv1.weight``, ...) of a TorchScript archive, read without executing it."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkls:
            raise CheckpointError(f"{path}: zip archive without <name>/data.pkl; not a TorchScript or torch.save file")
        prefix = pkls[0][: -len("data.pkl")]
        with archive.open(pkls[0]) as fh:
            try:
                root = _SafeUnpickler(fh, archive, prefix, path).load()
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError(f"{path}: cannot read {pkls[0]} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(root, _Record):
        raise CheckpointError(f"{path}: {pkls[0]} does not hold a scripted module")
    state: dict[str, torch.Tensor] = {}
    _flatten(root, "", state)
    return state


def _flatten(record: _Record, prefix: str, out: dict[str, torch.Tensor]) -> None:
    for name, value in record.attrs.items():
        if isinstance(value, _Record):
            _flatten(value, f"{prefix}{name}.", out)
        elif isinstance(value, torch.Tensor) and name not in _NOT_WEIGHTS:
            out[f"{prefix}{name}"] = value
