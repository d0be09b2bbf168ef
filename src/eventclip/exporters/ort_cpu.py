"""The ONNX Runtime CPU form of the event encoder: one attention node per block, patch embedding as MatMul.

Why: the legacy exporter traces ``nn.MultiheadAttention`` (batch-first) into ~40 Shape/Gather/Slice/
Transpose nodes per block, a pattern ONNX Runtime's transformer optimizer (model types ``clip`` and
``vit``) does not recognise, so nothing gets fused and the (L,B,E)<->(B,L,E) transposes cost ~8 % of an
INT8 ViT-B/32 batch-8 call. Here the graph is built fused to begin with, at export time:

* each self-attention block becomes three ``MatMul`` projections (Q, K, V; ONNX Runtime quantises
  them to INT8 like any MatMul, sharing one dynamic activation quantisation) feeding one
  ``com.microsoft.MultiHeadAttention`` node, then the output projection;
* the patch embedding (a Conv with stride = kernel, no padding, no bias) becomes patchify + ``MatMul``,
  so dynamic quantisation covers it too (ONNX Runtime's ``ConvInteger`` is slow on CPUs).

The maths is the same up to float summation order (parity runs on the file like on any other).
``MultiHeadAttention`` is an ONNX Runtime contrib op: TensorRT and other runtimes take the plain
``event_encoder.onnx``; this form is for ONNX Runtime's CPU provider only.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class _MultiHeadAttentionOp(torch.autograd.Function):
    """Scaled dot-product attention over (B,S,E) Q, K, V; exported as ONNX Runtime's contrib op."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int) -> torch.Tensor:
        b, s, e = q.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, s, num_heads, e // num_heads).transpose(1, 2)

        return F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(b, s, e)

    @staticmethod
    def symbolic(g, q, k, v, num_heads: int):  # g and the tensors are TorchScript graph values
        return g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=num_heads)


def _fusable_attention(mha: nn.Module) -> bool:
    return (isinstance(mha, nn.MultiheadAttention) and mha._qkv_same_embed_dim and mha.in_proj_bias is not None
            and mha.bias_k is None and not mha.add_zero_attn)


class FusedSelfAttention(nn.Module):
    """Drop-in for a ``nn.MultiheadAttention`` called as self-attention without a mask.

    Calls with a mask, with distinct key/value tensors (cross-attention, attention pooling) or
    asking for weights go to the original module unchanged, so the export stays correct for them.
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha
        e = mha.embed_dim
        self.q, self.k, self.v = (nn.Linear(e, e) for _ in range(3))
        with torch.no_grad():
            for lin, w, b in zip((self.q, self.k, self.v), mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3),
                                 strict=True):
                lin.weight.copy_(w)
                lin.bias.copy_(b)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        if key is not query or value is not query or attn_mask is not None or need_weights or kwargs:
            return self.mha(query, key, value, need_weights=need_weights, attn_mask=attn_mask, **kwargs)
        x = query if self.mha.batch_first else query.transpose(0, 1)
        y = self.mha.out_proj(_MultiHeadAttentionOp.apply(self.q(x), self.k(x), self.v(x), self.mha.num_heads))
        return (y if self.mha.batch_first else y.transpose(0, 1)), None


class PatchEmbedMatMul(nn.Module):
    """A stride = kernel, unpadded, bias-free Conv2d on (B,C,S,S) frames as patchify + MatMul.

    Returns the Conv's (B,O,S/p,S/p) layout, so the encoder's code after it runs unchanged.
    """

    def __init__(self, conv: nn.Conv2d, input_size: int) -> None:
        super().__init__()
        self.patch, self.channels, self.out = conv.kernel_size[0], conv.in_channels, conv.out_channels
        self.grid = input_size // self.patch
        self.register_buffer("weight_t", conv.weight.detach().reshape(self.out, -1).T.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, g, c = self.patch, self.grid, self.channels
        patches = x.reshape(-1, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(-1, g * g, c * p * p)
        return (patches @ self.weight_t).transpose(1, 2).reshape(-1, self.out, g, g)


def _patch_conv(conv: nn.Module, input_size: int) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.bias is None and conv.groups == 1
            and conv.kernel_size[0] == conv.kernel_size[1] == conv.stride[0] == conv.stride[1]
            and conv.padding in ((0, 0), "valid") and conv.dilation == (1, 1) and input_size % conv.stride[0] == 0)


def cpu_encoder(encoder: nn.Module, input_size: int) -> tuple[nn.Module, dict[str, int]]:
    """A copy of ``encoder`` (frames of ``input_size`` pixels) rewritten for ONNX Runtime's CPU provider.

    Returns the copy and counts of what was rewritten (``attention`` blocks, ``patch_embed``), which
    go into the bundle manifest; an encoder with nothing to rewrite comes back as a plain copy.
    """
    enc = copy.deepcopy(encoder).eval()
    counts = {"attention": 0, "patch_embed": 0}
    for module in list(enc.modules()):
        for name, child in list(module.named_children()):
            if _fusable_attention(child):
                setattr(module, name, FusedSelfAttention(child))
                counts["attention"] += 1
    if _patch_conv(getattr(enc, "conv1", None), input_size):
        enc.conv1 = PatchEmbedMatMul(enc.conv1, input_size)
        counts["patch_embed"] = 1
    return enc, counts
