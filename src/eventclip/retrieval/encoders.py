"""Embeddings of each modality in the event encoder's joint space, for indexes and queries.

* events: one frame per recording (a centred window, or all events) through any backend's ``encode``;
* images: the package's frozen CLIP image tower f_I (the package must include it), with the same
  resize and normalisation the trainer uses;
* texts: the text tower, as typed (``class_prompts`` wraps class names in templates and ensembles);
* audio, depth (and anything else): external embeddings from an ImageBind-compatible encoder,
  either an ``.npy`` file (N, D) or :class:`ImageBindEncoder` around the user's own ImageBind model.
  They are only comparable with event embeddings when the event encoder was trained into that
  encoder's space; eventclip ships no such model (docs/evaluation.md says what is verified).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.datasets.base import EventSlice, Item, Sample
from eventclip.datasets.batching import Batcher
from eventclip.datasets.cache import EventCache
from eventclip.errors import ConfigError
from eventclip.eval.protocols import embed_samples
from eventclip.events import Geometry
from eventclip.heads.base import unit
from eventclip.heads.classifier import as_numpy
from eventclip.progress import bar

IMAGEBIND_DIM = 1024
"""Width of ImageBind-Huge's joint embedding space."""
IMAGEBIND_INPUTS: dict[str, tuple[int, ...]] = {
    "audio": (3, 1, 128, 204),
    "depth": (1, 224, 224),
    "vision": (3, 224, 224),
}
"""Per-sample input shapes after ImageBind's own transforms: 3 clips of 128-bin x 204-frame log-mel
spectrograms; one-channel 224x224 disparity; 224x224 RGB."""
IMAGEBIND_KEYS = {"audio": "audio", "depth": "depth", "image": "vision", "text": "text"}
"""eventclip modality name -> ImageBind ``ModalityType`` value."""


def embed_event_files(paths: Sequence[str | Path], encoder: Any, representation: Any, *,
                      event_slice: EventSlice | None = None, geometry: Geometry | None = None,
                      batch_size: int = 32) -> np.ndarray:
    """(N, D) unit embeddings, one per event file (default slice: the card's window, centred); a progress
    bar on a terminal."""
    sl = event_slice or EventSlice(window_us=representation.window_us)
    samples = [Sample(Path(p), 0) for p in paths]
    with bar(total=len(samples), desc="embedding event files", unit="file") as shown:
        return embed_samples(samples, encoder, representation, geometry, sl, batch_size,
                             lambda i, n: shown.update(i - shown.n)).embeddings


def embed_images(paths: Sequence[str | Path], model: Any, batch_size: int = 32) -> np.ndarray:
    """(N, D) unit embeddings of image files through f_I, preprocessed exactly as in training."""
    import torch


    if getattr(model, "image_encoder", None) is None:
        raise ConfigError("image queries need the CLIP image tower f_I: use a model package saved with "
                          "include_image_encoder=True (image_encoder.safetensors)")
    batcher = Batcher(EventCache(), model.representation, None)
    out = []
    for start in range(0, len(paths), batch_size):
        chunk = [Path(p) for p in paths[start:start + batch_size]]
        for p in chunk:
            if not p.is_file():
                raise ConfigError(f"{p}: image file not found")
        x = torch.stack([batcher.image_tensor(Item(p, p, 0)) for p in chunk])
        with torch.no_grad():
            out.append(model.encode_images(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)


def embed_texts(texts: Sequence[str], encode_text: Callable[[list[str]], Any]) -> np.ndarray:
    """(N, D) unit embeddings of texts as typed."""
    if not texts:
        raise ConfigError("no texts to embed")
    return unit(as_numpy(encode_text(list(texts))))


def load_external(path: str | Path, ids_path: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Embeddings from another encoder: an ``.npy`` float array (N, D) and ids (a text file, one per
    line; default ``<stem>:<row>``). Errors name the file and what is wrong."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.dtype.kind not in "fiu" or arr.shape[0] == 0:
        raise ConfigError(f"{path}: expected a non-empty 2-D numeric array (N, D), got shape {arr.shape} {arr.dtype}")
    if not np.isfinite(arr).all():
        row = int(np.argmax(~np.isfinite(arr).all(axis=1)))
        raise ConfigError(f"{path}: row {row} holds NaN or inf; every embedding must be finite")
    if ids_path is None:
        return arr.astype(np.float32), [f"{path.stem}:{i}" for i in range(len(arr))]
    ids = [ln for ln in Path(ids_path).read_text().splitlines() if ln.strip()]
    if len(ids) != len(arr):
        raise ConfigError(f"{ids_path}: {len(ids)} ids for the {len(arr)} rows of {path}; give one id per line")
    return arr.astype(np.float32), ids


class ImageBindEncoder:
    """Adapter for a user's ImageBind model (``imagebind_model.imagebind_huge(pretrained=True)``).

    Any module called as ``model({key: tensor}) -> {key: (B, D)}`` works; inputs must already be
    transformed by ImageBind's ``data.load_and_transform_*`` helpers (shapes in
    :data:`IMAGEBIND_INPUTS`). Outputs are checked to be (B, ``dim``) and finite.
    """

    def __init__(self, model: Any, dim: int = IMAGEBIND_DIM) -> None:
        self.model, self.dim = model, int(dim)

    def embed(self, modality: str, inputs: Any) -> np.ndarray:
        """(B, dim) unit embeddings of one modality's batch."""
        import torch


        key = IMAGEBIND_KEYS.get(modality)
        if key is None:
            raise ConfigError(f"modality {modality!r} has no ImageBind input; use one of {sorted(IMAGEBIND_KEYS)}")
        if key in IMAGEBIND_INPUTS and tuple(inputs.shape[1:]) != IMAGEBIND_INPUTS[key]:
            raise ConfigError(f"{modality} inputs have per-sample shape {tuple(inputs.shape[1:])}; ImageBind expects "
                              f"{IMAGEBIND_INPUTS[key]} (apply ImageBind's own data transforms first)")
        with torch.no_grad():
            out = self.model({key: inputs})[key]
        emb = as_numpy(out)
        if emb.shape != (inputs.shape[0], self.dim) or not np.isfinite(emb).all():
            raise ConfigError(f"the ImageBind model returned {emb.shape} for {modality}; expected "
                              f"({inputs.shape[0]}, {self.dim}) finite values")
        return unit(emb)
