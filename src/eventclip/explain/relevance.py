"""Gradient-weighted attention relevance for the ViT event encoder (Chefer et al., ICCV 2021).

Rule ("Generic Attention-model Explainability", eq. for self-attention): start from R = I over
the tokens; for every block, Ā = mean over heads of (∇A ⊙ A)⁺ and R ← R + Ā·R, where A is the
block's attention probabilities and ∇A the gradient of the explained score with respect to them.
The class token's row of R over the patch tokens is the relevance of each patch.

open_clip's blocks call ``nn.MultiheadAttention`` with ``need_weights=False``, so the attention
probabilities never exist as tensors. :func:`forward_with_attention` therefore re-runs the vision
tower block by block from the module's own weights, computing softmax(QKᵀ/√d) explicitly;
``tests/test_explain.py`` checks that it reproduces ``visual(x)``.

The explained score is the cosine between the event embedding and a target text embedding (the
top zero-shot prompt by default). Patch relevance is spread back onto the event frame through the
transpose of the frame -> model-input resampling, so the map has the frame's shape (H, W pixels of
the sensor or its ROI), is zero on letterbox bars, and is scaled to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eventclip.errors import EventclipError


class ExplainError(EventclipError):
    """The encoder is not a ViT whose attention this module can re-run (or the target is unusable)."""


def _check_visual(visual: nn.Module) -> None:
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if not isinstance(visual, VisionTransformer):
        raise ExplainError(f"attention relevance needs a ViT event encoder; this one is {type(visual).__name__}")
    if getattr(visual, "attn_pool", None) is not None:
        raise ExplainError("attention relevance does not cover attentional pooling (CoCa-style towers)")
    for i, blk in enumerate(visual.transformer.resblocks):
        if type(blk) is not ResidualAttentionBlock or hasattr(blk, "ln_1_kv"):
            raise ExplainError(f"block {i} is {type(blk).__name__}; "
                               "only open_clip's ResidualAttentionBlock is supported")


def forward_with_attention(visual: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``visual(x)`` (B, D), computed so that each block's attention probabilities (B, heads, N, N) are
    returned as graph tensors (N = 1 + patches; token 0 is the class token)."""
    _check_visual(visual)
    h = visual._embeds(x)
    attentions = []
    for blk in visual.transformer.resblocks:
        mha = blk.attn
        b, n, c = h.shape
        heads = mha.num_heads
        hd = c // heads
        qkv = F.linear(blk.ln_1(h), mha.in_proj_weight, mha.in_proj_bias)
        q, k, v = (t.reshape(b, n, heads, hd).transpose(1, 2) for t in qkv.split(c, dim=-1))
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        attentions.append(attn)
        mixed = (attn @ v).transpose(1, 2).reshape(b, n, c)
        h = h + blk.ls_1(mha.out_proj(mixed))
        h = h + blk.ls_2(blk.mlp(blk.ln_2(h)))
    pooled, _ = visual._pool(h)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled, attentions


def token_relevance(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """Chefer's rule for one sample (batch index 0): R = I; R += mean_h((∇A ⊙ A)⁺) @ R per block -> (N, N)."""
    n = attentions[0].shape[-1]
    rel = torch.eye(n, dtype=torch.float64)
    for attn, grad in zip(attentions, grads, strict=True):
        a_bar = (grad[0] * attn[0]).clamp(min=0).mean(dim=0).double()
        rel = rel + a_bar @ rel
    return rel


@dataclass
class Relevance:
    """Patch relevance (grid x grid) and the explained cosine score."""

    patches: np.ndarray
    score: float


def patch_relevance(visual: nn.Module, model_input: torch.Tensor, target: torch.Tensor) -> Relevance:
    """Relevance of each patch for cos(f_E(model_input), target); ``model_input`` is (1, 3, S, S)."""
    if model_input.shape[0] != 1:
        raise ExplainError(f"explain one frame at a time; got a batch of {model_input.shape[0]}")
    was = visual.training
    visual.eval()
    try:
        with torch.enable_grad():
            x = model_input.detach().requires_grad_(False)
            out, attentions = forward_with_attention(visual, x)
            tgt = F.normalize(target.to(out).reshape(-1), dim=0)
            if tgt.shape[0] != out.shape[1]:
                raise ExplainError(f"target has {tgt.shape[0]} dimensions but the encoder gives {out.shape[1]}")
            score = (F.normalize(out, dim=-1)[0] * tgt).sum()
            grads = torch.autograd.grad(score, attentions)
    finally:
        visual.train(was)
    rel = token_relevance([a.detach() for a in attentions], [g.detach() for g in grads])[0, 1:]
    grid = int(round(math.sqrt(rel.numel())))
    if grid * grid != rel.numel():
        raise ExplainError(f"{rel.numel()} patch tokens do not form a square grid")
    return Relevance(rel.reshape(grid, grid).float().numpy(), float(score.detach()))


def to_frame(patches: np.ndarray, input_size: int, frame_shape: tuple[int, int], fit: str) -> np.ndarray:
    """Spread patch relevance onto the frame (H, W): each patch covers its pixels of the model input,
    then the transpose of the frame -> input resampling (eventclip.frames.preprocess) maps input pixels
    back to frame pixels. Non-negative in, non-negative out; scaled so the maximum is 1 (all-zero stays 0)."""
    from eventclip.frames.preprocess import resize_matrices

    grid = patches.shape[0]
    patch = input_size // grid
    canvas = np.zeros((input_size, input_size), dtype=np.float64)
    canvas[: grid * patch, : grid * patch] = np.kron(patches.astype(np.float64), np.ones((patch, patch)))
    h, w = frame_shape
    ry, rx = resize_matrices(h, w, input_size, fit)
    frame = ry.T.astype(np.float64) @ canvas @ rx.astype(np.float64)
    frame = np.clip(frame, 0.0, None)
    peak = frame.max()
    return (frame / peak if peak > 0 else frame).astype(np.float32)
