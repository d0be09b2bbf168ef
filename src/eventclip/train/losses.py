"""The paper's training losses, computed the way the authors' released code computes them.

Why a separate module: the ablation switches terms on and off, and each term is checked against a
slow direct reference in the tests. All functions take embeddings (rows = samples) and return a
scalar tensor. Only event embeddings (``evt``) are meant to carry gradient: image and text
embeddings come from the frozen CLIP (f_I, f_T) and should be computed under ``torch.no_grad``.

Faithful details from EavnJeong/Event_Modality_Application (``model/model.py``, ``trainer.py``):

* L_ct is InfoNCE with the frozen image embedding as query and the event embedding as key,
  temperature 0.02, multiplied by ``2·T`` as MoCo-v3 does. Under DDP the keys of all processes
  are gathered; the local slice keeps its gradient (the authors' gather is gradient-free).
* L_kl compares ``softmax(img·evt / 0.01)`` with a Sinkhorn-normalised ``img·img / 0.01``
  (3 iterations). The Sinkhorn sums are all-reduced when a process group exists and are local
  otherwise.
* L_zs distils text alignment (ZSCL): teacher logits ``s·img·textᵀ``, student ``s·evt·textᵀ``
  with the features *unnormalised*, as the authors do; soft cross-entropy at ``T=2`` times ``T²``,
  plus the transposed term in which the roles of the two logit matrices swap.
* L_pred = mean(1 − cos(evt, text of the true class)), used for fine-tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

T_EVENT = 0.02
"""Temperature of the contrastive (InfoNCE) term."""
T_IMAGE = 0.01
"""Temperature of the similarity matrices in the KL term."""
T_ZSCL = 2.0
"""Distillation temperature of the ZSCL term."""
LOGIT_SCALE = 1.0 / 0.07
"""CLIP's initial logit scale ``s`` (the authors' trainer starts it at log(1/0.07))."""


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_local_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from every process (rank order); only the local slice carries gradient.

    Without an initialised process group this is the identity, so single-process training and
    the tests need no backend.
    """
    if not _distributed():
        return t
    parts = [torch.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.detach().contiguous())
    parts[dist.get_rank()] = t
    return torch.cat(parts, dim=0)


def contrastive_loss(img: torch.Tensor, evt: torch.Tensor, temperature: float = T_EVENT) -> torch.Tensor:
    """L_ct: InfoNCE of image queries against (gathered) event keys, scaled by ``2·T`` (MoCo v3)."""
    q = F.normalize(img, dim=1)
    k = F.normalize(evt, dim=1)
    k = gather_with_local_grad(k)
    logits = q @ k.t() / temperature
    n = q.shape[0]
    offset = n * dist.get_rank() if _distributed() else 0
    labels = torch.arange(n, device=q.device) + offset
    return F.cross_entropy(logits, labels) * (2.0 * temperature)


def sinkhorn(scores: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """Sinkhorn-Knopp normalisation of ``exp(scores)`` into a (B, K) soft assignment whose rows sum to 1.

    Mirrors the authors' SwAV-style routine; the column sums are all-reduced across processes
    only when a process group exists. The global maximum is subtracted before ``exp``: the first
    step divides by the total, so this changes nothing mathematically but keeps ``exp(1/0.01)``
    from overflowing float32 (the authors' version returns NaN there).
    """
    peak = scores.detach().max()
    if _distributed():
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    q = torch.exp(scores - peak).t()
    b = q.shape[1]
    k = q.shape[0]
    total = q.sum()
    if _distributed():
        dist.all_reduce(total)
    q = q / total
    for _ in range(iterations):
        rows = q.sum(dim=1, keepdim=True)
        if _distributed():
            dist.all_reduce(rows)
        q = q / rows / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t()


def kl_loss(img: torch.Tensor, evt: torch.Tensor, img_teacher: torch.Tensor,
            temperature: float = T_IMAGE) -> torch.Tensor:
    """L_kl: KL(Sinkhorn(img_teacher·img_teacher/T) || softmax(img·evt/T)), batch-mean.

    ``img`` are the query image embeddings and ``img_teacher`` the foundation model's image
    embeddings; in the authors' code both come from the same frozen f_I, so passing the same
    tensor twice is the usual call.
    """
    q1 = F.normalize(img.flatten(1), dim=1)
    q2 = F.normalize(evt.flatten(1), dim=1)
    k1 = F.normalize(img_teacher.flatten(1), dim=1)
    log_p = F.log_softmax(q1 @ q2.t() / temperature, dim=-1)
    target = sinkhorn(k1 @ k1.t() / temperature)
    return F.kl_div(log_p, target, reduction="batchmean", log_target=False)


def _distill(teacher: torch.Tensor, student: torch.Tensor, temperature: float) -> torch.Tensor:
    p = F.softmax(teacher / temperature, dim=1)
    return F.cross_entropy(student / temperature, p, reduction="mean") * temperature**2


def zscl_loss(
    img: torch.Tensor,
    evt: torch.Tensor,
    text: torch.Tensor,
    logit_scale: float | torch.Tensor = LOGIT_SCALE,
    temperature: float = T_ZSCL,
) -> torch.Tensor:
    """L_zs (unweighted): distil the frozen image→text logits into the event→text logits.

    ``text`` is (C, D), one row per class prompt. The second term is the transposed
    (text→sample) distillation with the roles swapped, exactly as the authors wrote it.
    """
    ref = logit_scale * img @ text.t()
    cur = logit_scale * evt @ text.t()
    return _distill(ref, cur, temperature) + _distill(cur.t(), ref.t(), temperature)


def pred_loss(evt: torch.Tensor, text: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_pred: mean of ``1 − cos(evt_i, text[labels_i])`` (the fine-tuning objective)."""
    return (1.0 - F.cosine_similarity(evt, text[labels], dim=-1)).mean()


@dataclass(frozen=True)
class LossConfig:
    """Which terms make up the objective: L = ct·L_ct + alpha·zs·L_zs + kl·L_kl (+ pred·L_pred)."""

    ct: bool = True
    zs: bool = True
    kl: bool = True
    pred: bool = False
    alpha: float = 0.1
    t_event: float = T_EVENT
    t_image: float = T_IMAGE
    t_zscl: float = T_ZSCL

    def __post_init__(self) -> None:
        if not (self.ct or self.zs or self.kl or self.pred):
            raise ValueError("LossConfig: at least one of ct, zs, kl, pred must be enabled")
        for name in ("alpha", "t_event", "t_image", "t_zscl"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"LossConfig.{name} must be a positive number, got {v}")

    @property
    def name(self) -> str:
        """Short label for tables, e.g. ``ct+zs+kl``."""
        return "+".join(t for t in ("ct", "zs", "kl", "pred") if getattr(self, t))


def total_loss(
    cfg: LossConfig,
    img: torch.Tensor,
    evt: torch.Tensor,
    text: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    logit_scale: float | torch.Tensor = LOGIT_SCALE,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The combined objective and a dict of each enabled term's value (for logging).

    ``text`` (C, D) is needed for L_zs and L_pred; ``labels`` (class indices into ``text``) for L_pred.
    """
    terms: dict[str, torch.Tensor] = {}
    if cfg.ct:
        terms["ct"] = contrastive_loss(img, evt, cfg.t_event)
    if cfg.kl:
        terms["kl"] = kl_loss(img, evt, img, cfg.t_image)
    if cfg.zs or cfg.pred:
        if text is None:
            raise ValueError("text embeddings are required for the zs and pred loss terms")
    if cfg.zs:
        terms["zs"] = cfg.alpha * zscl_loss(img, evt, text, logit_scale, cfg.t_zscl)
    if cfg.pred:
        if labels is None:
            raise ValueError("class labels are required for the pred loss term")
        terms["pred"] = pred_loss(evt, text, labels)
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}
