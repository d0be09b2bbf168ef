"""CLIP architecture configs as data: resolve a name or a dict into open_clip ``CLIP(**cfg)`` kwargs.

A config is a plain dict ``{"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}`` so it can live
in the model card and rebuild the exact same network on another machine.
"""

from __future__ import annotations

import copy
from typing import Any

from eventclip.model.errors import ArchitectureError, CheckpointError

ALIASES = {"ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14", "ViT-L/14@336px": "ViT-L-14-336"}
"""OpenAI's names (as in ``clip.load``) for the open_clip configs they match."""

OPENAI_ARCHS = ("ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336")
"""Architectures OpenAI released; their weights were trained with QuickGELU."""


def canonical_arch(name: str) -> str:
    """open_clip's name for ``name`` (accepts OpenAI spellings such as ``ViT-B/32``)."""
    return ALIASES.get(name, name)


def supported_archs() -> list[str]:
    """open_clip model names that build into a plain CLIP with a ViT image tower."""
    import open_clip

    names = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name)
        if cfg is not None and _problem(cfg) is None:
            names.append(name)
    return names


def _problem(cfg: dict[str, Any]) -> str | None:
    """Why ``cfg`` is not a plain ViT CLIP we support, or None when it is."""
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if not isinstance(vision, dict) or not isinstance(text, dict) or "embed_dim" not in cfg:
        return "it needs embed_dim, vision_cfg and text_cfg"
    if cfg.get("custom_text") or text.get("hf_model_name"):
        return "its text tower is not CLIP's own transformer (custom/HF text)"
    if vision.get("timm_model_name") or not isinstance(vision.get("layers", 12), int):
        return "its image tower is not open_clip's VisionTransformer (timm or ResNet)"
    if cfg.get("init_logit_bias") is not None or cfg.get("multimodal_cfg"):
        return "it is a SigLIP/CoCa variant"
    return None


def resolve_config(arch: str | dict[str, Any], quick_gelu: bool | None = None) -> tuple[str, dict[str, Any]]:
    """Return ``(architecture name, CLIP kwargs)`` for an open_clip name or a config dict.

    ``quick_gelu`` defaults to True for OpenAI architectures (their weights need it) and for names
    ending in ``-quickgelu``; pass it explicitly to override. Raises ArchitectureError naming the
    architecture and listing what is supported.
    """
    if isinstance(arch, dict):
        name, cfg = "custom", copy.deepcopy(arch)
    else:
        import open_clip

        name = canonical_arch(arch)
        base = open_clip.get_model_config(name)
        if base is None:
            raise ArchitectureError(
                f"unknown architecture {arch!r}; use an open_clip ViT name such as ViT-B-32, ViT-B-16, ViT-L-14 "
                f"(see eventclip.model.configs.supported_archs()) or pass a config dict"
            )
        cfg = copy.deepcopy(base)
        if name.endswith("-quickgelu") or name in OPENAI_ARCHS:
            cfg.setdefault("quick_gelu", True)
    problem = _problem(cfg)
    if problem:
        raise ArchitectureError(f"architecture {name if name != 'custom' else cfg!r} is not supported: {problem}")
    if quick_gelu is not None:
        cfg["quick_gelu"] = quick_gelu
    cfg.setdefault("quick_gelu", False)
    keep = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}
    return name, {k: v for k, v in cfg.items() if k in keep}


def config_from_openai_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Infer CLIP kwargs from tensor shapes in an OpenAI-layout state dict (``visual.*``, ``transformer.*``).

    Shapes cannot tell QuickGELU from GELU; the result says True (OpenAI's choice) and callers override.
    """
    need = ["visual.conv1.weight", "visual.positional_embedding", "text_projection", "positional_embedding",
            "token_embedding.weight", "ln_final.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise CheckpointError(f"not an OpenAI-layout ViT CLIP state dict: keys {missing} are missing")
    width = state["visual.conv1.weight"].shape[0]
    patch = state["visual.conv1.weight"].shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state["ln_final.weight"].shape[0]
    return {
        "embed_dim": int(state["text_projection"].shape[1]),
        "vision_cfg": {
            "image_size": int(patch * grid),
            "layers": len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")}),
            "width": int(width),
            "head_width": 64,
            "patch_size": int(patch),
        },
        "text_cfg": {
            "context_length": int(state["positional_embedding"].shape[0]),
            "vocab_size": int(state["token_embedding.weight"].shape[0]),
            "width": int(text_width),
            "heads": int(text_width // 64),
            "layers": len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}),
        },
        "quick_gelu": True,
    }


TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""A two-layer ViT and text transformer (32 px input, 32-d joint space) for tests and smoke runs:
the real CLIP architecture, small enough to run in milliseconds on a CPU. Not for accuracy."""
