"""Each loss against a slow, direct (loop-based, float64) reference, and gradient flow to f_E only."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from eventclip.train import losses as L


def _rand(seed: int, *shape: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _softmax(v: list[float]) -> list[float]:
    m = max(v)
    e = [math.exp(x - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def _norm(rows: np.ndarray) -> np.ndarray:
    return rows / np.sqrt((rows**2).sum(1, keepdims=True))


def ref_contrastive(img: np.ndarray, evt: np.ndarray, t: float) -> float:
    q, k = _norm(img), _norm(evt)
    n = len(q)
    total = 0.0
    for i in range(n):
        logits = [float(q[i] @ k[j]) / t for j in range(n)]
        total += -math.log(_softmax(logits)[i])
    return total / n * 2 * t


def ref_sinkhorn(scores: np.ndarray, iters: int) -> np.ndarray:
    b = scores.shape[0]
    q = np.exp(scores).T.copy()
    k = q.shape[0]
    q /= q.sum()
    for _ in range(iters):
        for r in range(q.shape[0]):
            q[r] /= q[r].sum() * k
        for c in range(q.shape[1]):
            q[:, c] /= q[:, c].sum() * b
    return (q * b).T


def ref_kl(img: np.ndarray, evt: np.ndarray, t: float) -> float:
    q1, q2 = _norm(img), _norm(evt)
    target = ref_sinkhorn(q1 @ q1.T / t, 3)
    n = len(q1)
    total = 0.0
    for i in range(n):
        p = _softmax([float(q1[i] @ q2[j]) / t for j in range(n)])
        for j in range(n):
            if target[i, j] > 0:
                total += target[i, j] * (math.log(target[i, j]) - math.log(p[j]))
    return total / n


def ref_distill(teacher: np.ndarray, student: np.ndarray, t: float) -> float:
    total = 0.0
    for i in range(teacher.shape[0]):
        p = _softmax(list(teacher[i] / t))
        s = _softmax(list(student[i] / t))
        total += -sum(pi * math.log(si) for pi, si in zip(p, s, strict=True))
    return total / teacher.shape[0] * t * t


def ref_zscl(img: np.ndarray, evt: np.ndarray, text: np.ndarray, s: float, t: float) -> float:
    ref = s * img @ text.T
    cur = s * evt @ text.T
    return ref_distill(ref, cur, t) + ref_distill(cur.T, ref.T, t)


def test_contrastive_matches_reference():
    img, evt = _rand(0, 6, 5), _rand(1, 6, 5)
    got = L.contrastive_loss(img, evt, 0.02).item()
    assert got == pytest.approx(ref_contrastive(img.numpy(), evt.numpy(), 0.02), rel=1e-9)


def test_contrastive_is_small_when_aligned_and_large_when_shuffled():
    img = _rand(2, 8, 16)
    aligned = L.contrastive_loss(img, img + 0.01 * _rand(3, 8, 16)).item()
    shuffled = L.contrastive_loss(img, img.roll(1, 0)).item()
    assert aligned < 0.01 < shuffled


def test_sinkhorn_matches_reference_and_rows_sum_to_one():
    scores = _rand(4, 5, 5) * 3
    got = L.sinkhorn(scores, 3).numpy()
    np.testing.assert_allclose(got, ref_sinkhorn(scores.numpy(), 3), rtol=1e-10)
    np.testing.assert_allclose(got.sum(1), np.ones(5), rtol=1e-10)


def test_kl_matches_reference_without_process_group():
    assert not dist.is_initialized()
    img, evt = _rand(5, 7, 4), _rand(6, 7, 4)
    got = L.kl_loss(img, evt, img, 0.01).item()
    assert got == pytest.approx(ref_kl(img.numpy(), evt.numpy(), 0.01), rel=1e-8)


def test_zscl_matches_reference():
    img, evt, text = _rand(7, 6, 4) * 0.3, _rand(8, 6, 4) * 0.3, _rand(9, 3, 4) * 0.3
    got = L.zscl_loss(img, evt, text, 1 / 0.07, 2.0).item()
    assert got == pytest.approx(ref_zscl(img.numpy(), evt.numpy(), text.numpy(), 1 / 0.07, 2.0), rel=1e-9)


def test_pred_loss_matches_reference():
    evt, text = _rand(10, 5, 4), _rand(11, 3, 4)
    labels = torch.tensor([0, 2, 1, 1, 0])
    want = np.mean(
        [1 - float(_norm(evt.numpy()[i : i + 1])[0] @ _norm(text.numpy()[[labels[i]]])[0]) for i in range(5)]
    )
    assert L.pred_loss(evt, text, labels).item() == pytest.approx(want, rel=1e-9)


def test_total_combines_enabled_terms_with_alpha():
    img, evt, text = _rand(12, 6, 4), _rand(13, 6, 4), _rand(14, 3, 4)
    full, parts = L.total_loss(L.LossConfig(alpha=0.1), img, evt, text)
    assert set(parts) == {"ct", "zs", "kl"}
    zs = L.zscl_loss(img, evt, text).item()
    assert parts["zs"] == pytest.approx(0.1 * zs)
    assert full.item() == pytest.approx(sum(parts.values()))
    only_ct, parts_ct = L.total_loss(L.LossConfig(zs=False, kl=False), img, evt, text)
    assert set(parts_ct) == {"ct"} and only_ct.item() == pytest.approx(parts["ct"])


def test_config_rejects_no_terms_and_bad_alpha():
    with pytest.raises(ValueError, match="at least one"):
        L.LossConfig(ct=False, zs=False, kl=False)
    with pytest.raises(ValueError, match="alpha"):
        L.LossConfig(alpha=-1)
    with pytest.raises(ValueError, match="text embeddings"):
        L.total_loss(L.LossConfig(), _rand(0, 2, 3), _rand(1, 2, 3))


def test_gradients_reach_event_encoder_only():
    torch.manual_seed(0)
    f_i = torch.nn.Linear(10, 4)
    f_t = torch.nn.Embedding(3, 4)
    f_e = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    images, frames = torch.randn(6, 10), torch.randn(6, 10)
    with torch.no_grad():
        img = f_i(images)
        text = f_t(torch.arange(3))
    loss, _ = L.total_loss(L.LossConfig(pred=True), img, f_e(frames), text, torch.tensor([0, 1, 2, 0, 1, 2]))
    loss.backward()
    assert all(p.grad is None for p in (*f_i.parameters(), *f_t.parameters()))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in f_e.parameters())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, img: torch.Tensor, evt: torch.Tensor, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        n = len(img) // world
        local_evt = evt[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        local_img = img[rank * n : (rank + 1) * n]
        ct = L.contrastive_loss(local_img, local_evt)
        ct.backward()
        kl = L.kl_loss(local_img, local_evt.detach(), local_img)
        torch.save({"ct": ct.detach(), "grad": local_evt.grad, "kl": kl}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_contrastive_under_gloo_ddp_equals_full_batch(tmp_path):
    """Two processes each holding half the batch: mean loss == single-process loss on the whole batch,
    and each rank's key gradient equals its slice of the full-batch gradient (divided by world size)."""
    img, evt = _rand(20, 8, 6), _rand(21, 8, 6)
    out = str(tmp_path / "r")
    mp.start_processes(_ddp_worker, args=(2, _free_port(), img, evt, out), nprocs=2, start_method="spawn")
    r0, r1 = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    full = L.contrastive_loss(img, evt)
    assert ((r0["ct"] + r1["ct"]) / 2).item() == pytest.approx(full.item(), rel=1e-9)
    # Rank r's key gradient comes from its own queries against all keys, through its own slice only.
    for rank, res in enumerate((r0, r1)):
        keys = evt.clone()
        local = keys[rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
        parts = [keys[:4], keys[4:]]
        parts[rank] = local
        q = torch.nn.functional.normalize(img[rank * 4 : (rank + 1) * 4], dim=1)
        k = torch.nn.functional.normalize(torch.cat(parts), dim=1)
        logits = q @ k.t() / L.T_EVENT
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(4) + 4 * rank) * 2 * L.T_EVENT
        loss.backward()
        torch.testing.assert_close(res["grad"], local.grad)
        assert res["ct"].item() == pytest.approx(loss.item(), rel=1e-9)
    assert torch.isfinite(r0["kl"]) and torch.isfinite(r1["kl"])


def test_kl_is_finite_in_float32_at_temperature_001():
    img = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    assert torch.isfinite(L.kl_loss(img, torch.randn(16, 8), img))
