"""Embedding indexes: exact cosine search in numpy by default, FAISS (inner product) when installed.

An index holds unit vectors (N, D) with an id per row and the modality they came from; ``search``
returns, per query, the k best rows by cosine similarity, best first. Both backends give the same
ranking for the same vectors (FAISS ``IndexFlatIP`` is exact too); numpy breaks ties by row order.
Indexes save to / load from one ``.npz`` (no pickles) with their metadata as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.heads.base import unit

MODALITIES = ("event", "image", "text", "audio", "depth")
"""The paper's five modalities; ``audio`` and ``depth`` come from external (ImageBind-style) embeddings."""


@dataclass
class SearchResult:
    """Per query: ``indices`` (Q, k) rows of the index and their cosine ``scores`` (Q, k), best first."""

    indices: np.ndarray
    scores: np.ndarray
    ids: list[list[str]]


@dataclass
class EmbeddingIndex:
    """Unit embeddings of one collection. ``meta`` records where they came from (model hash, files)."""

    embeddings: np.ndarray
    ids: list[str]
    modality: str
    meta: dict[str, Any] = field(default_factory=dict)
    backend: str = "numpy"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError(f"modality {self.modality!r} is unknown; use one of {', '.join(MODALITIES)}")
        self.embeddings = unit(self.embeddings)
        if len(self.ids) != len(self.embeddings):
            raise ConfigError(f"{len(self.ids)} ids for {len(self.embeddings)} embeddings; give one id per row")
        if self.backend not in ("numpy", "faiss"):
            raise ConfigError(f"index backend {self.backend!r} is unknown; use numpy or faiss")
        self._faiss = None
        if self.backend == "faiss":
            from eventclip._optional import require

            faiss = require("faiss", "faiss", "the FAISS index backend")
            self._faiss = faiss.IndexFlatIP(self.dim)
            self._faiss.add(np.ascontiguousarray(self.embeddings, dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        """(Q, N) cosine similarity of every query with every row (exact, numpy)."""
        q = unit(queries)
        if q.shape[1] != self.dim:
            raise ConfigError(f"queries have {q.shape[1]} dimensions but the {self.modality} index has {self.dim}; "
                              "both must come from encoders of the same joint space")
        return q @ self.embeddings.T

    def search(self, queries: np.ndarray, k: int = 10) -> SearchResult:
        """The k most similar rows per query (k capped at the index size)."""
        k = min(int(k), len(self))
        if k <= 0:
            raise ConfigError(f"k must be > 0 and the index non-empty (k={k}, {len(self)} rows)")
        if self._faiss is not None:
            q = unit(queries)
            if q.shape[1] != self.dim:
                self.similarity(q)  # raises the dimension error
            scores, idx = self._faiss.search(np.ascontiguousarray(q, dtype=np.float32), k)
        else:
            sim = self.similarity(queries)
            idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
            scores = np.take_along_axis(sim, idx, axis=1)
        return SearchResult(idx, scores, [[self.ids[j] for j in row] for row in idx])

    def save(self, path: str | Path) -> Path:
        """Write the index as ``.npz``: embeddings, ids, and a JSON header (modality, meta)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"modality": self.modality, "meta": self.meta})
        with open(path, "wb") as fh:
            np.savez(fh, embeddings=self.embeddings.astype(np.float32), ids=np.array(self.ids, dtype=str),
                     header=np.array(header))
        return path

    @classmethod
    def load(cls, path: str | Path, backend: str = "numpy") -> EmbeddingIndex:
        """Read an index written by :meth:`save`; ConfigError naming the file when it is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                return cls(z["embeddings"], [str(s) for s in z["ids"]], header["modality"], header["meta"], backend)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: not an eventclip index file ({type(exc).__name__}: {exc}); "
                              "build one with `eventclip retrieve build`") from exc
