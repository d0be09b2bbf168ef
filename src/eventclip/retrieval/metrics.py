"""Recall@k on a paired collection: does a relevant gallery item appear among a query's k best?

Relevance is by key: gallery item j is relevant to query i when ``gallery_keys[j] == query_keys[i]``
(the pair id for event<->image, the class for event<->text). With ``exclude_self`` (query and
gallery are the same collection, event->event) each query's own row is removed first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks_of_first_relevant(similarity: np.ndarray, query_keys: Sequence, gallery_keys: Sequence,
                            exclude_self: bool = False) -> np.ndarray:
    """0-based rank of the best-ranked relevant gallery item per query (-1 when none is relevant)."""
    sim = np.array(similarity, dtype=np.float64)
    qk, gk = np.asarray(query_keys), np.asarray(gallery_keys)
    if sim.shape != (len(qk), len(gk)):
        raise ValueError(f"similarity {sim.shape} does not match {len(qk)} queries x {len(gk)} gallery items")
    if exclude_self:
        if sim.shape[0] != sim.shape[1]:
            raise ValueError("exclude_self needs the queries to be the gallery itself (a square similarity)")
        np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")
    relevant = gk[order] == qk[:, None]
    if exclude_self:
        relevant &= order != np.arange(len(qk))[:, None]
    has = relevant.any(axis=1)
    return np.where(has, relevant.argmax(axis=1), -1)


def recall_at_k(similarity: np.ndarray, query_keys: Sequence, gallery_keys: Sequence,
                ks: Sequence[int] = (1, 5, 10), exclude_self: bool = False) -> dict[str, float]:
    """``{"R@1": ..., "R@5": ..., "R@10": ...}``; queries without any relevant item count as misses."""
    ranks = ranks_of_first_relevant(similarity, query_keys, gallery_keys, exclude_self)
    if len(ranks) == 0:
        return {f"R@{k}": float("nan") for k in ks}
    return {f"R@{k}": float(((ranks >= 0) & (ranks < k)).mean()) for k in ks}
