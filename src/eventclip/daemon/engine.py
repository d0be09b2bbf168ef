"""The model side of the pipeline, built from the stage objects of :mod:`eventclip.stream`.

Why reuse them: the daemon must give the same labels as ``eventclip classify`` and the Python chain
(``open_events(p).windows(...).frames(...).encode(...).heads(...)``) on the same file, so frames
(:class:`~eventclip.stream.FrameStage`), encoder (:class:`~eventclip.stream.EncodeStage`), heads
and text embeddings (:class:`eventclip.heads.classifier.Classifier`) are the same objects; this module
only holds them for the pipeline's threads and swaps the prompts on SIGHUP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.daemon.config import DaemonConfig
from eventclip.daemon.notify import Notifier
from eventclip.events import Geometry, make_events
from eventclip.frames.quality import BlankWatch
from eventclip.frames.running import RunningCounts
from eventclip.frames.windows import Window
from eventclip.heads.classifier import Classifier, build_classifier
from eventclip.heads.prompts import load_prompts
from eventclip.model.hub import resolve_model
from eventclip.stream import EncodeStage, FrameStage, open_encoder

log = logging.getLogger(__name__)


class ClassifierEngine:
    """Stages of one model package + prompts file; :meth:`reload_prompts` swaps heads atomically."""

    def __init__(self, package: Path, encoder: Any, prompts_path: Path, top_k: int | None = None,
                 backend_name: str | None = None, head: str = "zero_shot", anomaly_ema: float | None = None,
                 frames: str = "auto") -> None:
        self.package = Path(package)
        self.encoder = encoder
        self.top_k = top_k
        self.head = head
        self.anomaly_ema = anomaly_ema
        self.backend_name = backend_name or f"{getattr(encoder, 'name', type(encoder).__name__)}:" \
                                            f"{getattr(encoder, 'device', 'cpu')}"
        self.prompts_path = Path(prompts_path)
        self.classifier = self._build(self.prompts_path)
        self.window_us: int = int(self.classifier.representation.window_us)
        self.blank = BlankWatch(self.classifier.representation, "eventclipd")
        device = str(getattr(encoder, "device", "cpu"))
        self.encode_stage = EncodeStage(encoder)
        frames_device: str | None = None
        if frames == "torch" or (frames == "auto" and device.startswith("cuda") and self.encode_stage.tensor_input):
            frames_device = device if device.startswith("cuda") else "cpu"
        self.frames = FrameStage(self.classifier.representation, device=frames_device, blank=self.blank)
        self._reload_lock = threading.Lock()

    @property
    def frames_device(self) -> str | None:
        """The torch device frames are made on, or None for numpy frames."""
        return self.frames.device

    def _build(self, path: Path) -> Classifier:
        return build_classifier(self.package, self.encoder, load_prompts(path), top_k=self.top_k, head=self.head,
                                ema_alpha=self.anomaly_ema)

    def model_input(self, windows: Sequence[Any], geometry: Geometry, watch: bool = True) -> Any:
        """(B, 3, S, S) float32 frames of a micro-batch, by the model card's representation.

        numpy on the CPU path; a torch tensor on the encoder's device on the torch/CUDA path (one
        batched accumulation launch, no copy back to the host before the encoder).
        """
        return self.frames(windows, geometry, watch=watch)

    def running_counts(self, windower: Any, geometry: Geometry) -> RunningCounts | None:
        """A :class:`~eventclip.frames.running.RunningCounts` that counts windows while they are open,
        or None where frames are made at close instead (frames on a torch device, or windows not on
        a time grid)."""
        return self.frames.running_counts(windower, geometry)

    def model_input_counts(self, counts: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
        """(B, 3, S, S) float32 encoder input from counts kept while the windows were open."""
        return self.frames.from_counts(counts, geometry)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(B, D) unit embeddings from the backend."""
        return self.encode_stage(x)

    def classify(self, windows: Sequence[Any], embeddings: np.ndarray) -> list:
        """One :class:`eventclip.heads.base.Result` per window with the prompts in use now."""
        clf = self.classifier  # one read: a concurrent reload swaps the whole object
        return clf.results(windows, embeddings)

    def warm_up(self, geometry: Geometry) -> None:
        """Run one window (one event at each sensor corner) through frames, encoder and heads before the stream starts.

        Why: the first call pays for JIT compilation and loading (numba kernels run only when a
        window has events), lazy allocations and backend graph optimisation (hundreds of ms); doing
        it before READY keeps it out of the latency of the first real windows.
        """
        w, h = geometry.width - 1, geometry.height - 1
        corners = make_events(np.array([0, w, 0, w]), np.array([0, 0, h, h]), np.array([0, 1, 0, 1]), np.zeros(4, int))
        window = Window.of(0, self.window_us, corners)
        self.classifier.results([window], self.encode(self.model_input([window], geometry, watch=False)))

    @property
    def anomaly_threshold(self) -> float:
        return float(self.classifier.anomaly_threshold)

    def reload_prompts(self, path: Path) -> None:
        """Load, validate and encode ``path``; only then replace the classifier (old one kept on error)."""
        with self._reload_lock:
            fresh = self._build(Path(path))
            self.classifier, self.prompts_path = fresh, Path(path)


def load_engine(cfg: DaemonConfig, notifier: Notifier | None = None, threads: int | None = None) -> ClassifierEngine:
    """Load the backend for ``cfg.model`` (a folder, a pulled name; the bundled model when unset) and encode
    the prompts.

    ``threads``: ONNX Runtime intra-op threads (the thread plan's encoder share; torch is sized by
    :func:`eventclip.daemon.threads.apply`). While the backend loads (a TensorRT engine build can
    take minutes) a thread keeps asking systemd for more start-up time with ``EXTEND_TIMEOUT_USEC``.
    """
    package = resolve_model(cfg.model)
    stop = threading.Event()
    keeper = None
    if notifier is not None and notifier.enabled:
        def keep_extending() -> None:
            while not stop.wait(10.0):
                notifier.extend_timeout(30_000_000)
                notifier.status(f"loading model {package} ({cfg.backend.kind}); still working")

        keeper = threading.Thread(target=keep_extending, name="eventclipd-extend", daemon=True)
        keeper.start()
    t0 = time.monotonic()
    try:
        options = cfg.backend.model_dump(exclude={"kind"}, exclude_unset=True)
        if threads and (cfg.backend.kind == "auto" or "threads" in type(cfg.backend).model_fields):
            options.setdefault("threads", threads)  # auto hands it to the backends that have the field
        encoder = open_encoder(package, cfg.backend.kind, **options)
        engine = ClassifierEngine(package, encoder, cfg.prompts, cfg.top_k, head=cfg.head, anomaly_ema=cfg.anomaly_ema,
                                  frames=cfg.frames)
    finally:
        stop.set()
        if keeper is not None:
            keeper.join(1.0)
    log.info("model %s loaded on %s in %.1f s", package, engine.backend_name, time.monotonic() - t0)
    return engine

