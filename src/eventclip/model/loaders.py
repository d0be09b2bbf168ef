"""Build an EventClip from local checkpoint files, never the network, never running pickled code.

Sources and their layouts:

* ``openai-jit``: OpenAI's released ``ViT-B-32.pt`` etc. (TorchScript zip), read by
  :mod:`eventclip.model.torchscript` without ``torch.jit.load``.
* ``state-dict``: a ``torch.save``'d OpenAI/open_clip-layout state dict (``visual.*``, ``transformer.*``).
* ``open_clip``: open_clip training checkpoints ``{"state_dict": ..., "epoch": ...}``, keys maybe ``module.``-prefixed.
* ``safetensors``: the same key layout in a ``.safetensors`` file.
* ``authors``: Jeong et al.'s ``vitb.pt`` / ``vitl.pt``: ``{"checkpoint": LPTNMmodel.state_dict(),
  "optimizer": ...}`` where ``encoder_k.*`` is the trained event encoder (a whole OpenAI CLIP; its
  visual tower is f_E, its text tower and logit scale are what their inference uses),
  ``encoder_q.*`` the frozen CLIP copy and ``foundation_model.*`` the original CLIP (f_I).
  Keys may carry ``model.`` (Lightning module save) or ``module.`` (DDP) in front.

Pickles are read with ``torch.load(weights_only=True)``; anything else is refused with a CheckpointError.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from eventclip.model.clip import EventClip
from eventclip.model.configs import config_from_openai_state_dict
from eventclip.model.errors import CheckpointError
from eventclip.model.torchscript import is_torchscript, read_torchscript_state

KINDS = ("auto", "openai-jit", "state-dict", "open_clip", "safetensors", "authors")
AUTHORS_EVENT_PREFIX = "encoder_k."
AUTHORS_IMAGE_PREFIXES = ("foundation_model.", "encoder_q.")


def _strip(state: dict[str, Any], prefixes: tuple[str, ...] = ("module.", "model.")) -> dict[str, Any]:
    """Drop wrapper prefixes (DDP ``module.``, Lightning ``model.``) shared by every key."""
    changed = True
    while changed and state:
        changed = False
        for p in prefixes:
            if all(k.startswith(p) for k in state):
                state = {k[len(p):]: v for k, v in state.items()}
                changed = True
    return state


def read_raw(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Return ``(kind, object)`` for a checkpoint file, reading it safely; kind as in KINDS."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return "safetensors", load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if is_torchscript(path):
        return "openai-jit", read_torchscript_state(path)
    if not zipfile.is_zipfile(path) and path.stat().st_size < 8:
        raise CheckpointError(f"{path}: {path.stat().st_size} bytes; too short to be a checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: the checkpoint contains pickled objects other than tensors (weights_only=True "
            f"rejected it: {str(exc).splitlines()[0]}). Re-save its state dict with torch.save(model.state_dict()) "
            "or as safetensors"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: not a torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a dict of tensors")
    for candidate in (obj.get("checkpoint"), obj):
        authors = _authors_state(candidate) if isinstance(candidate, dict) else None
        if authors is not None:
            return "authors", authors
    if isinstance(obj.get("state_dict"), dict):
        return "open_clip", obj["state_dict"]
    return "state-dict", obj


def _authors_state(state: dict[str, Any]) -> dict[str, Any] | None:
    """The LPTNMmodel part of ``state`` with wrapper prefixes removed, or None if it has no ``encoder_k.``.

    A Lightning save of their trainer puts the model under ``model.`` next to the trainer's own
    ``logit_scale``; only keys under the wrapper prefix belong to the model.
    """
    for key in state:
        i = key.find(AUTHORS_EVENT_PREFIX)
        if i >= 0 and all(part in ("module", "model") for part in key[:i].split(".")[:-1]):
            prefix = key[:i]
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return None


def _sub(state: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_checkpoint(
    path: str | Path,
    arch: str | dict[str, Any] | None = None,
    *,
    kind: str = "auto",
    with_image_encoder: bool = True,
    representation: dict[str, Any] | None = None,
    quick_gelu: bool | None = None,
) -> EventClip:
    """EventClip from a local checkpoint. ``arch`` (open_clip name/config) is inferred from shapes when None.

    For CLIP checkpoints f_E starts as a copy of f_I. For the authors' checkpoints f_E is their
    trained ``encoder_k`` image tower and the card records ``preprocessing_variant="authors"``.
    ``quick_gelu`` cannot be read from shapes: by default it is True for OpenAI's files (JIT,
    plain state dicts, the authors' CLIP copies) and False for open_clip checkpoints and
    safetensors (LAION-style training); pass it to override. The card records the choice.
    """
    if kind not in KINDS:
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; choose one of {', '.join(KINDS)}")
    path = Path(path).expanduser()
    found, state = read_raw(path)
    if (kind != "auto" and kind != found
            and not (kind in ("state-dict", "open_clip") and found in ("state-dict", "open_clip"))):
        raise CheckpointError(f"{path}: looks like a {found!r} checkpoint, not {kind!r}")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: key {bad[0]!r} is a {type(state[bad[0]]).__name__}, not a tensor")
    source = f"{path.name} ({found})"
    if quick_gelu is None and arch is None:
        quick_gelu = found in ("openai-jit", "state-dict", "authors")
    if found == "authors":
        return _load_authors(path, state, arch, with_image_encoder, representation, source, quick_gelu)
    clip_state = _strip(state)
    name_or_cfg = arch if arch is not None else config_from_openai_state_dict(clip_state)
    return EventClip.from_clip(
        name_or_cfg, clip_state, with_image_encoder=with_image_encoder, representation=representation,
        source=source, quick_gelu=quick_gelu,
    )


def _load_authors(path, state, arch, with_image_encoder, representation, source, quick_gelu) -> EventClip:
    event_clip = _sub(state, AUTHORS_EVENT_PREFIX)
    image_clip = next((s for p in AUTHORS_IMAGE_PREFIXES if (s := _sub(state, p))), None)
    cfg = arch if arch is not None else config_from_openai_state_dict(event_clip)
    base = image_clip if image_clip is not None else event_clip
    if with_image_encoder and image_clip is None:
        raise CheckpointError(
            f"{path}: has encoder_k.* but neither foundation_model.* nor encoder_q.*, so there is no f_I; "
            "load with with_image_encoder=False"
        )
    text_keys = [k for k in event_clip if not k.startswith("visual.")]
    combined = {**{k: v for k, v in base.items() if k.startswith("visual.")}, **{k: event_clip[k] for k in text_keys}}
    model = EventClip.from_clip(
        cfg, combined, with_image_encoder=with_image_encoder, representation=representation, source=source,
        preprocessing_variant="authors", quick_gelu=quick_gelu,
    )
    visual = _sub(event_clip, "visual.")
    own = model.event_encoder.state_dict()
    for key, value in visual.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{path}: key 'encoder_k.visual.{key}' has shape {tuple(value.shape)}, "
                                  f"architecture expects {tuple(own[key].shape)}")
    missing = sorted(set(own) - set(visual))
    if missing:
        raise CheckpointError(f"{path}: encoder_k.visual is missing keys {missing[:5]}")
    model.event_encoder.load_state_dict({k: v.float() for k, v in visual.items()}, strict=True)
    return model
