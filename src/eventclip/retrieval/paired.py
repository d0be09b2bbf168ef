"""Recall@1/5/10 in every direction on a paired collection (recordings with labels and images).

Directions and what counts as a hit:

* ``event-text``: a recording finds its class text among all class texts;
* ``text-event``: a class text finds any recording of that class;
* ``event-event``: a recording finds another recording of its class (itself excluded);
* ``event-image`` / ``image-event``: a recording finds its own paired image, and back (exact pairs).

Queries with no relevant gallery item at all (a class with one recording, in event-event) are
left out of the recall and counted in ``no_relevant``. Each row also gives the chance level of R@1
(the expected hit rate of a random ranking) so small collections can be read honestly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eventclip.heads.base import unit
from eventclip.retrieval.metrics import ranks_of_first_relevant

DIRECTIONS = ("event-text", "text-event", "event-event", "event-image", "image-event")


def _row(sim: np.ndarray, qk: np.ndarray, gk: np.ndarray, ks: Sequence[int],
         exclude_self: bool = False) -> dict[str, Any]:
    """Recall over the queries that have at least one relevant gallery item; the others are counted
    under ``no_relevant`` (e.g. a class with a single recording has no event->event partner)."""
    rel = (gk[None, :] == qk[:, None]).sum(axis=1) - (1 if exclude_self else 0)
    size = sim.shape[1] - (1 if exclude_self else 0)
    keep = rel > 0
    ranks = ranks_of_first_relevant(sim, qk, gk, exclude_self)[keep]
    recall = {f"R@{k}": float((ranks < k).mean()) if keep.any() else float("nan") for k in ks}
    chance = float(np.mean(rel[keep] / max(size, 1))) if keep.any() else float("nan")
    return {**recall, "queries": int(keep.sum()), "no_relevant": int((~keep).sum()), "gallery": int(size),
            "chance_R@1": chance}


def paired_recall(events: np.ndarray, labels: np.ndarray, class_text: np.ndarray, images: np.ndarray | None = None,
                  ks: Sequence[int] = (1, 5, 10), directions: Sequence[str] = DIRECTIONS) -> dict[str, Any]:
    """Recall table ``{direction: {"R@1": .., "R@5": .., "R@10": .., "queries", "gallery", "chance_R@1"}}``.

    ``events`` (N, D) and optional ``images`` (N, D) are row-paired; ``labels`` (N,) index
    ``class_text`` (C, D). Image directions without images are listed under ``skipped``.
    """
    ev, txt = unit(events), unit(class_text)
    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    out: dict[str, Any] = {"skipped": {}}
    for d in directions:
        if d == "event-text":
            out[d] = _row(ev @ txt.T, labels, np.arange(len(txt)), ks)
        elif d == "text-event":
            out[d] = _row(txt[present] @ ev.T, present, labels, ks)
        elif d == "event-event":
            out[d] = _row(ev @ ev.T, labels, labels, ks, exclude_self=True)
        elif d in ("event-image", "image-event"):
            if images is None:
                out["skipped"][d] = "the model package has no image encoder f_I (or the dataset no images)"
                continue
            im = unit(images)
            pair = np.arange(len(ev))
            out[d] = _row(ev @ im.T if d == "event-image" else im @ ev.T, pair, pair, ks)
        else:
            raise ValueError(f"unknown direction {d!r}; use {', '.join(DIRECTIONS)}")
    return out


def markdown_table(table: dict[str, Any], ks: Sequence[int] = (1, 5, 10)) -> str:
    """The recall table as Markdown, in %, with the chance level of R@1."""
    head = "| direction | queries | gallery | " + " | ".join(f"R@{k}" for k in ks) + " | chance R@1 |"
    lines = [head, "|" + "---|" * (4 + len(ks))]
    for d, row in table.items():
        if d == "skipped":
            continue
        if row["queries"] == 0:
            lines.append(f"| {d} | 0 | {row['gallery']} | " + " | ".join("–" for _ in ks)
                         + f" | no query has a relevant item ({row['no_relevant']} without) |")
            continue
        cells = " | ".join(f"{100 * row[f'R@{k}']:.1f}" for k in ks)
        lines.append(f"| {d} | {row['queries']} | {row['gallery']} | {cells} | {100 * row['chance_R@1']:.1f} |")
    lines += [f"| {d} | – | – | " + " | ".join("–" for _ in ks) + f" | skipped: {why} |"
              for d, why in table.get("skipped", {}).items()]
    return "\n".join(lines)
