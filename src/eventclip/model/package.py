"""The model package: the folder a user moves between machines.

Layout (all paths relative to the folder)::

    model.json                         card: config, input size, normalisation, representation,
                                       logit_scale, training data, accuracy, sha256 of every file
    event_encoder.safetensors          f_E (CLIP image-tower architecture)
    text_encoder.safetensors           f_T: token/positional embedding, transformer, ln_final, text_projection
    tokenizer/bpe_simple_vocab_16e6.txt.gz   CLIP's BPE vocab, so prompts tokenise without open_clip
    image_encoder.safetensors          optional frozen f_I (training only)
    heads/<name>.npz                   optional heads (few-shot probe / cache, anomaly bank)

Weights are safetensors (no pickled code). Every file is hashed into the card and verified on load.
Reading the card and heads needs only numpy; the weights need torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.model.card import CARD_FILE, ModelCard, sha256_file, verify_files
from eventclip.model.errors import PackageError

EVENT_FILE = "event_encoder.safetensors"
TEXT_FILE = "text_encoder.safetensors"
IMAGE_FILE = "image_encoder.safetensors"
HEADS_DIR = "heads"


def _versions() -> dict[str, str]:
    import open_clip
    import torch

    import eventclip

    return {"eventclip": eventclip.__version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "numpy": np.__version__}


def _save_tensors(module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


def _load_tensors(module, path: Path) -> None:
    """Load safetensors into ``module`` (which may live on the meta device: tensors are assigned)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise PackageError(f"{path}: not a readable safetensors file ({exc})") from exc
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise PackageError(f"{path}: keys do not match the card's architecture: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise PackageError(f"{path}: key {key!r} has shape {tuple(value.shape)} but the card's architecture "
                               f"expects {tuple(own[key].shape)}")
    module.load_state_dict(state, strict=True, assign=True)


def save_package(model: Any, path: str | Path, *, include_image_encoder: bool = False) -> Path:
    """Write ``model`` (an :class:`~eventclip.model.clip.EventClip`) into the folder ``path`` (created if
    needed) and return it.

    Heads already recorded in the model's card are copied along when saving to a new folder.
    The card written last, so a half-written folder fails hash verification instead of loading.
    """
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    card = model.card
    _save_tensors(model.event_encoder, folder / EVENT_FILE)
    _save_tensors(model.text_encoder, folder / TEXT_FILE)
    written = [EVENT_FILE, TEXT_FILE]
    if include_image_encoder:
        if model.image_encoder is None:
            raise PackageError("include_image_encoder=True but this model has no image encoder f_I loaded")
        _save_tensors(model.image_encoder, folder / IMAGE_FILE)
        written.append(IMAGE_FILE)
    elif (folder / IMAGE_FILE).exists():
        (folder / IMAGE_FILE).unlink()
    bpe_dst = folder / card.tokenizer
    bpe_dst.parent.mkdir(parents=True, exist_ok=True)
    bpe_src = Path(model.tokenizer_path)
    if bpe_src.resolve() != bpe_dst.resolve():
        shutil.copyfile(bpe_src, bpe_dst)
    written.append(card.tokenizer)
    source_dir = getattr(model, "package_dir", None)
    for rel in card.heads.values():
        dst = folder / rel
        if source_dir is not None and Path(source_dir).resolve() != folder.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(source_dir) / rel, dst)
        if not dst.is_file():
            raise PackageError(f"{dst}: head file recorded in the card is missing; cannot save the package")
        written.append(rel)
    files = {rel: sha256_file(folder / rel) for rel in written}
    card = card.model_copy(update={
        "files": files,
        "logit_scale": float(model.logit_scale.detach()),
        "model_hash": model.model_hash,
        "versions": _versions(),
    })
    card.write(folder)
    model.card = card
    model.package_dir = folder
    return folder


def open_package(path: str | Path, *, with_image_encoder: bool = False) -> tuple[Path, ModelCard]:
    """The folder and card of a package whose files all verify (sha256): what loading may trust.

    Why separate from building the model: this module is the folder's format and knows nothing of
    the model class, so the model (:meth:`eventclip.model.clip.EventClip.from_pretrained`) imports it
    and not the other way round.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise PackageError(f"{folder}: not a folder; a model package is a folder holding {CARD_FILE}")
    card = ModelCard.read(folder)
    for rel in (EVENT_FILE, TEXT_FILE, card.tokenizer) + ((IMAGE_FILE,) if with_image_encoder else ()):
        if rel not in card.files:
            raise PackageError(f"{folder / rel}: missing from the package ({CARD_FILE} does not list it)"
                               + ("; save with include_image_encoder=True" if rel == IMAGE_FILE else ""))
    verify_files(folder, card)
    return folder, card


def load_weights(model: Any, folder: Path, *, with_image_encoder: bool = False) -> None:
    """Assign the package's tensors to ``model``'s encoders (which may live on the meta device)."""
    _load_tensors(model.event_encoder, folder / EVENT_FILE)
    _load_tensors(model.text_encoder, folder / TEXT_FILE)
    if with_image_encoder:
        _load_tensors(model.image_encoder, folder / IMAGE_FILE)


def write_head(folder: str | Path, name: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Store a head as ``heads/<name>.npz`` (arrays + JSON meta; no pickles) and record its hash in the card."""
    folder = Path(folder)
    card = ModelCard.read(folder)
    rel = f"{HEADS_DIR}/{name}.npz"
    (folder / HEADS_DIR).mkdir(exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
    with open(folder / rel, "wb") as fh:
        np.savez(fh, **payload)
    files = dict(card.files, **{rel: sha256_file(folder / rel)})
    card.model_copy(update={"heads": dict(card.heads, **{name: rel}), "files": files}).write(folder)
    return folder / rel


def read_head(folder: str | Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load ``heads/<name>.npz`` after checking its hash; PackageError naming the head if absent."""
    folder = Path(folder)
    card = ModelCard.read(folder)
    if name not in card.heads:
        have = ", ".join(sorted(card.heads)) or "none"
        raise PackageError(f"{folder / CARD_FILE}: no head named {name!r} (heads present: {have}); fit it first")
    rel = card.heads[name]
    path = folder / rel
    if not path.is_file():
        raise PackageError(f"{path}: head file missing from the package")
    if sha256_file(path) != card.files.get(rel):
        raise PackageError(f"{path}: sha256 does not match {CARD_FILE}; the head file was altered")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
        meta = json.loads(str(data["__meta__"]))
    return arrays, meta


def save_head(folder: str | Path, name: str, head: Any, **meta: Any) -> Path:
    """Store a fitted head (LinearProbe, TipAdapter, ReferenceAnomaly) as ``heads/<name>.npz`` with extra meta."""
    arrays, head_meta = head.to_arrays()
    return write_head(folder, name, arrays, head_meta | meta)
