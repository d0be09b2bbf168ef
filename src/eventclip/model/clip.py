"""EventClip: an event encoder f_E with the architecture of CLIP's image tower, beside frozen CLIP.

f_E starts as a deep copy of CLIP's image tower f_I (Jeong et al., arXiv 2412.03093) and is the
only part that trains. f_I (optional, needed only for training) and the text tower f_T stay frozen,
so event embeddings land in CLIP's joint space and any text prompt becomes a classifier.
Networks come from open_clip, built from a config dict kept in the model card.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eventclip.errors import ConfigError
from eventclip.model.card import ModelCard, representation_from
from eventclip.model.configs import resolve_config
from eventclip.model.errors import CheckpointError
from eventclip.model.package import load_weights, open_package, save_package
from eventclip.model.tokenizer import ClipTokenizer


class TextEncoder(nn.Module):
    """CLIP's text tower f_T: token ids (N, context_length) -> projected features (N, D), unnormalised.

    Holds exactly the text weights (token and positional embeddings, transformer, ln_final,
    text_projection); the causal mask is rebuilt, not stored.
    """

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.token_embedding = clip.token_embedding
        self.positional_embedding = clip.positional_embedding
        self.transformer = clip.transformer
        self.ln_final = clip.ln_final
        self.text_projection = clip.text_projection
        self.pool_type = clip.text_pool_type
        self.register_buffer("attn_mask", self._causal_mask(), persistent=False)

    def _causal_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        n = self.positional_embedding.shape[0]
        return torch.full((n, n), float("-inf"), device=device).triu_(1)

    def reset_mask(self) -> None:
        """Rebuild the causal mask on the weights' device (after loading onto a meta-built module)."""
        self.attn_mask = self._causal_mask(self.positional_embedding.device)

    @property
    def context_length(self) -> int:
        return int(self.positional_embedding.shape[0])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x, attn_mask=self.attn_mask)
        x = self.ln_final(x)
        x = text_global_pool(x, tokens, self.pool_type)
        return self.text_projection(x) if isinstance(self.text_projection, nn.Linear) else x @ self.text_projection


def default_bpe_path() -> Path:
    """open_clip's copy of CLIP's BPE vocab; save_pretrained copies it into the package."""
    import open_clip.tokenizer

    return Path(open_clip.tokenizer.default_bpe())


def _build_clip(cfg: dict[str, Any]) -> nn.Module:
    from open_clip.model import CLIP

    return CLIP(**cfg)


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted key names, dtypes, shapes and raw bytes: equal iff weights are bit-identical."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class EventClip(nn.Module):
    """The event encoder with CLIP's frozen towers. Every stage is callable from Python:

    ``encode_frames(x)`` (B,3,S,S) -> (B,D) L2-normalised event embeddings;
    ``encode_text(prompts)`` -> (N,D) normalised; ``encode(np.ndarray)`` for numpy callers (daemon,
    classify); ``save_pretrained``/``from_pretrained`` for the model package.
    """

    def __init__(
        self,
        card: ModelCard,
        *,
        clip: nn.Module | None = None,
        with_image_encoder: bool = True,
        bpe_path: str | Path | None = None,
    ) -> None:
        """Assemble from a card (and an already built open_clip CLIP, else one is built from the card)."""
        super().__init__()
        clip = clip if clip is not None else _build_clip(card.clip_config)
        self.card = card
        self.event_encoder = copy.deepcopy(clip.visual)
        self.image_encoder = clip.visual if with_image_encoder else None
        self.text_encoder = TextEncoder(clip)
        self.logit_scale = nn.Parameter(torch.tensor(float(card.logit_scale)), requires_grad=False)
        self._bpe_path = Path(bpe_path) if bpe_path is not None else None
        self._tokenizer: ClipTokenizer | None = None
        self.package_dir: Path | None = None
        self.freeze_clip()

    def freeze_clip(self) -> None:
        """Freeze f_I and f_T (the paper trains f_E only)."""
        for module in (self.image_encoder, self.text_encoder):
            if module is not None:
                module.requires_grad_(False)
                module.eval()

    def train(self, mode: bool = True) -> EventClip:
        """Train mode for f_E only; the frozen towers stay in eval mode (no dropout drift)."""
        super().train(mode)
        self.freeze_clip()
        return self

    @classmethod
    def from_clip(
        cls,
        arch: str | dict[str, Any] = "ViT-B-32",
        state_dict: dict[str, torch.Tensor] | None = None,
        *,
        quick_gelu: bool | None = None,
        with_image_encoder: bool = True,
        representation: dict[str, Any] | None = None,
        source: str = "random init",
        preprocessing_variant: str = "eventclip",
        seed: int | None = None,
    ) -> EventClip:
        """Build from an open_clip name or config dict; optionally load CLIP weights (OpenAI key layout).

        ``state_dict`` keys are those of ``open_clip.model.CLIP`` (= OpenAI's): ``visual.*``,
        ``transformer.*``, ``token_embedding.weight``, ... f_E is initialised as a copy of f_I.
        """
        name, cfg = resolve_config(arch, quick_gelu)
        with torch.random.fork_rng(devices=[]):  # a seed makes init reproducible without touching the caller's RNG
            if seed is not None:
                torch.manual_seed(seed)
            clip = _build_clip(cfg)
        if state_dict is not None:
            load_clip_state(clip, state_dict, source)
        size = int(clip.visual.image_size[0])
        rep = representation_for(size, preprocessing_variant, representation)
        card = ModelCard(
            architecture=name,
            clip_config=cfg,
            input_size=size,
            representation=rep,
            preprocessing_variant=preprocessing_variant,
            logit_scale=float(clip.logit_scale.detach().reshape(-1)[0]),
            embed_dim=int(cfg["embed_dim"]),
            context_length=int(clip.positional_embedding.shape[0]),
            source=source,
        )
        return cls(card, clip=clip, with_image_encoder=with_image_encoder)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, with_image_encoder: bool = False,
                        map_location: str = "cpu") -> EventClip:
        """Load a model package folder (hashes verified); see :mod:`eventclip.model.package`."""
        folder, card = open_package(path, with_image_encoder=with_image_encoder)
        with torch.device("meta"):  # no random init: every weight comes from the files (4x faster for ViT-B)
            model = cls(card, with_image_encoder=with_image_encoder, bpe_path=folder / card.tokenizer)
        load_weights(model, folder, with_image_encoder=with_image_encoder)
        model.text_encoder.reset_mask()
        model.logit_scale = torch.nn.Parameter(torch.tensor(float(card.logit_scale)), requires_grad=False)
        model.freeze_clip()
        model.package_dir = folder
        model.eval()
        return model.to(map_location)

    def save_pretrained(self, path: str | Path, *, include_image_encoder: bool = False) -> Path:
        """Write this model as a package folder; returns the folder."""
        return save_package(self, path, include_image_encoder=include_image_encoder)

    @property
    def input_size(self) -> int:
        """Side of the square (pixels) frames must have for the event encoder."""
        return self.card.input_size

    @property
    def embed_dim(self) -> int:
        return self.card.embed_dim

    @property
    def representation(self):
        """The frames contract (``eventclip.frames.preprocess.Representation``) stored in the card."""
        return self.card.representation_model()

    @property
    def model_hash(self) -> str:
        """sha256 identifying the weights, config and representation that decide embeddings (cache key)."""
        digest = hashlib.sha256()
        digest.update(state_hash(self.event_encoder.state_dict()).encode())
        digest.update(state_hash(self.text_encoder.state_dict()).encode())
        extras = {"cfg": self.card.clip_config, "rep": self.card.representation, "scale": float(self.logit_scale)}
        digest.update(json.dumps(extras, sort_keys=True).encode())
        return digest.hexdigest()

    @property
    def tokenizer_path(self) -> Path:
        """The BPE vocab file in use: the package's own copy, else open_clip's."""
        return self._bpe_path or default_bpe_path()

    @property
    def tokenizer(self) -> ClipTokenizer:
        """The one CLIP tokenizer of the project (shared with the ONNX Runtime backend: same ids everywhere)."""
        if self._tokenizer is None:
            self._tokenizer = ClipTokenizer(self.tokenizer_path, context_length=self.card.context_length)
        return self._tokenizer

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """(N, context_length) int64 token ids."""
        return torch.from_numpy(self.tokenizer(list(prompts)))

    def _device(self) -> torch.device:
        return next(self.event_encoder.parameters()).device

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Event frames (B,3,S,S), already normalised, -> (B,D) unit-length embeddings from f_E."""
        return F.normalize(self.event_encoder(x), dim=-1)

    def encode_images(self, x: torch.Tensor) -> torch.Tensor:
        """RGB images (B,3,S,S), CLIP-normalised, -> (B,D) unit-length embeddings from frozen f_I."""
        if self.image_encoder is None:
            raise CheckpointError(
                "this EventClip has no image encoder f_I; load it with with_image_encoder=True "
                "(the package must include image_encoder.safetensors)"
            )
        return F.normalize(self.image_encoder(x), dim=-1)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (N, context_length) -> (N,D) unit-length text embeddings from frozen f_T."""
        return F.normalize(self.text_encoder(tokens.to(self._device())), dim=-1)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (N,D) unit-length text embeddings."""
        return self.encode_tokens(self.tokenize(prompts))

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Numpy in, numpy out: frames (B,3,S,S) float32 -> (B,D) float32 normalised embeddings.

        The shape every backend offers, so ``classify`` and the daemon treat torch and ONNX alike.
        """
        was_training = self.event_encoder.training
        self.event_encoder.eval()
        try:
            out = self.encode_frames(torch.as_tensor(np.asarray(x, dtype=np.float32), device=self._device()))
        finally:
            self.event_encoder.train(was_training)
        return out.float().cpu().numpy()

    def encode_text_numpy(self, prompts: list[str]) -> np.ndarray:
        """``encode_text`` as numpy, the callable shape the prompt cache expects."""
        return self.encode_text(prompts).float().cpu().numpy()

    def forward(self, frames: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, N): exp(logit_scale) × cosine(event embedding, text embedding)."""
        return self.logit_scale.exp() * self.encode_frames(frames) @ self.encode_tokens(tokens).T


def representation_for(input_size: int, variant: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """Validated Representation fields for a model of ``input_size`` px (ConfigError if they disagree).

    ``variant`` ``authors`` (a checkpoint of Jeong et al.) starts from their preprocessing
    (:meth:`Representation.authors <eventclip.frames.preprocess.Representation.authors>`), which
    ``given`` fields override; otherwise ``given`` fills in the defaults.
    """
    fields = dict(given or {})
    fields.setdefault("input_size", input_size)
    rep = representation_from(fields, "model config", authors=variant == "authors", error=ConfigError)
    if rep.input_size != input_size:
        raise ConfigError(f"representation.input_size is {rep.input_size} px but the model's input is {input_size} px")
    return rep.model_dump(mode="json")


def load_clip_state(clip: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy an OpenAI-layout state dict into an open_clip CLIP; errors name the key and both shapes."""
    own = clip.state_dict()
    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: does not fit the architecture: missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}"
            f" unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}; check --arch"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(value.shape)} in the checkpoint but the architecture "
                f"expects {tuple(own[key].shape)}; the checkpoint is for a different architecture"
            )
    clip.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def create_eventclip(arch: str | dict[str, Any] = "ViT-B-32", **kwargs: Any) -> EventClip:
    """The one factory: an EventClip for an open_clip ViT name or a config dict (see EventClip.from_clip)."""
    return EventClip.from_clip(arch, **kwargs)
