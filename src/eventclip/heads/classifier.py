"""The reusable classify path: windows -> frames -> any encoder -> heads -> Result per window.

The encoder is anything with ``encode(x: (B,3,S,S) float32) -> (B,D)`` (EventClip, the runtime
backends for PyTorch / ONNX Runtime / TensorRT), and text comes from any ``encode_text(prompts)``;
the CLI, the daemon and the benchmarks share this code so every backend gives the same labels.
Whole files and encoders are opened by :mod:`eventclip.stream` (``classify_file``, ``open_encoder``).
numpy only; torch is imported by whichever encoder needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eventclip.events import Geometry
from eventclip.frames.quality import BlankWatch
from eventclip.heads.base import Result
from eventclip.heads.probe import LinearProbe
from eventclip.heads.prompt_anomaly import PromptAnomaly
from eventclip.heads.prompts import PromptSet, cached_text_embeddings, embed_prompts
from eventclip.heads.reference_anomaly import ReferenceAnomaly
from eventclip.heads.saved import load_head
from eventclip.heads.smoothing import Ema
from eventclip.heads.tip import TipAdapter
from eventclip.heads.zero_shot import ZeroShotHead
from eventclip.model.card import ModelCard
from eventclip.model.errors import PackageError

ANOMALY_HEAD = "anomaly"
"""Name under ``heads/`` of the reference bank written by ``eventclip anomaly fit``."""


class Encoder(Protocol):
    """What classify needs from a backend: numpy frames in, (B, D) embeddings out."""

    def encode(self, x: Any) -> np.ndarray: ...


class TextEncoder(Protocol):
    def encode_text(self, prompts: Sequence[str]) -> Any: ...


def as_numpy(x: Any) -> np.ndarray:
    """float32 numpy from a numpy array or a (possibly CUDA) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


@dataclass
class Classifier:
    """Everything after the windows. ``head`` gives labels; anomaly comes from the reference bank
    when one is set, else from the prompt descriptions; ``ema`` smooths it over windows."""

    encoder: Encoder
    representation: Any
    head: ZeroShotHead | LinearProbe | TipAdapter | None = None
    prompt_anomaly: PromptAnomaly | None = None
    reference_anomaly: ReferenceAnomaly | None = None
    anomaly_threshold: float = 0.5
    label_threshold: float = 0.0
    ema: Ema | None = None
    blank: BlankWatch | None = None

    def model_input(self, events_list: Sequence[Any], geometry: Geometry) -> np.ndarray:
        """(B, 3, S, S) encoder input of B windows' events (each an event array or its pieces); with
        ``blank`` set, nearly blank inputs are reported (once per cause)."""
        x = self.representation(list(events_list), geometry)
        if self.blank is not None:
            self.blank.check(x, [sum(len(p) for p in ([e] if isinstance(e, np.ndarray) else e)) for e in events_list])
        return x

    def embed(self, events_list: Sequence[Any], geometry: Geometry) -> np.ndarray:
        """(B, D) embeddings of B windows' events (see :meth:`model_input`)."""
        if not events_list:
            return np.zeros((0, 0), dtype=np.float32)
        return as_numpy(self.encoder.encode(self.model_input(events_list, geometry)))

    def anomaly(self, embeddings: np.ndarray) -> np.ndarray | None:
        scorer = self.reference_anomaly or self.prompt_anomaly
        if scorer is None:
            return None
        scores = scorer(embeddings)
        return self.ema(scores) if self.ema is not None else scores

    def results(self, windows: Sequence[Any], embeddings: np.ndarray) -> list[Result]:
        """One Result per window (``t_start``, ``t_end``, ``events`` attributes) from its embedding."""
        labels = self.head(embeddings) if self.head is not None else [[] for _ in windows]
        if self.label_threshold > 0:
            labels = [[(lab, p) for lab, p in row if p >= self.label_threshold] for row in labels]
        scores = self.anomaly(embeddings)
        out = []
        for i, w in enumerate(windows):
            a = None if scores is None else float(scores[i])
            out.append(Result(int(w.t_start), int(w.t_end), labels[i], a,
                              bool(a is not None and a >= self.anomaly_threshold), w.n_events))
        return out

    def __call__(self, windows: Sequence[Any], geometry: Geometry) -> list[Result]:
        return self.results(windows, self.embed([w.parts for w in windows], geometry))


def build_classifier(
    package: str | Path,
    encoder: Encoder,
    prompts: PromptSet | None = None,
    *,
    text_encoder: TextEncoder | None = None,
    head: str = "zero_shot",
    top_k: int | None = None,
    use_bank: bool = True,
    ema_alpha: float | None = None,
    cache_dir: str | Path | None = None,
    watch_blank: str | None = None,
) -> Classifier:
    """A Classifier for a model package: its card's representation, the chosen head, anomaly sources.

    ``head``: ``zero_shot`` (needs ``prompts``), or the name of a few-shot head saved in the package
    (``probe``, ``tip``). Text embeddings are cached by (model hash, prompts hash). ``watch_blank``
    names the caller (a file) in the warning about nearly blank windows; None checks nothing.
    """
    folder = Path(package)
    card = ModelCard.read(folder)
    rep = card.representation_model()
    text_encoder = text_encoder or encoder  # type: ignore[assignment]
    embeddings = None
    if prompts is not None:
        def encode_text(p: list[str]) -> np.ndarray:
            return as_numpy(text_encoder.encode_text(p))

        if card.model_hash:
            embeddings = cached_text_embeddings(prompts, encode_text, card.model_hash, cache_dir)
        else:  # no hash to key a cache entry on: compute, never share
            embeddings = embed_prompts(prompts, encode_text)
    k = top_k or (prompts.top_k if prompts is not None else 5)
    if head == "zero_shot":
        if embeddings is None:
            raise PackageError("the zero-shot head needs prompts (--prompts FILE)")
        chosen: Any = ZeroShotHead(embeddings.classes, embeddings.labels, card.logit_multiplier, k)
    else:
        chosen = load_head(folder, head)
        chosen.k = k
    prompt_anomaly = None
    threshold = 0.5
    if prompts is not None and prompts.anomaly is not None:
        prompt_anomaly = PromptAnomaly(embeddings.normal, embeddings.abnormal, card.logit_multiplier)
        threshold = prompts.anomaly.threshold
    bank = load_head(folder, ANOMALY_HEAD) if use_bank and ANOMALY_HEAD in card.heads else None
    return Classifier(
        encoder, rep, chosen, prompt_anomaly, bank, threshold,
        label_threshold=prompts.threshold if prompts is not None else 0.0,
        ema=Ema(ema_alpha) if ema_alpha is not None else None,
        blank=BlankWatch(rep, watch_blank) if watch_blank is not None else None,
    )
