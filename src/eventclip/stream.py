"""The data flow as a chain you can stop anywhere: events -> windows -> frames -> embeddings -> results.

::

    from eventclip.stream import open_encoder, open_events

    with open_events("rec.raw") as events:
        for result in events.windows(window_us=33_000).frames(rep).encode(encoder).heads(classifier):
            print(result.t_start_us, result.labels[:1])

Each link is a lazy iterator: iterate ``events`` for :class:`~eventclip.events.EventChunk` objects,
``.windows(...)`` for :class:`~eventclip.frames.windows.Window` objects, ``.frames(...)`` for
``(window, frame)`` pairs (the (3, S, S) float32 encoder input), ``.encode(...)`` for
``(window, embedding)`` pairs and ``.heads(...)`` for one :class:`~eventclip.heads.base.Result` per
window, in time order, empty windows included. Frames are made and encoded in batches of
``batch_size`` windows (the encoder wants batches); results come out one window at a time.

Why a chain of stage objects: ``eventclip classify``, ``eval`` and the daemon used to wire
windows, frames, encoder and heads by hand, each its own way. The stage objects here
(:class:`FrameStage`, :class:`EncodeStage`, the windowers of :mod:`eventclip.frames.windows` and the
classifier's heads) are the ones :mod:`eventclip.daemon.pipeline` runs in its threads, so the chain
on a recording gives the daemon's labels, scores and window bounds (``tests/test_daemon_stream.py``).
numpy in and out; torch only where the encoder or torch frames need it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eventclip.events import EventChunk, Geometry
from eventclip.frames.accumulate import stack_windows
from eventclip.frames.preprocess import Representation
from eventclip.frames.quality import BlankWatch
from eventclip.frames.running import RunningCounts
from eventclip.frames.windows import Mode, Window, make_windower
from eventclip.heads.base import Result
from eventclip.heads.classifier import Classifier, Encoder, as_numpy
from eventclip.io import EventStream
from eventclip.io import open_events as open_file
from eventclip.runtime.base import BACKENDS, select
from eventclip.sensors.base import Source

log = logging.getLogger(__name__)


def open_encoder(package: str | Path, backend: str = "auto", **config: Any) -> Any:
    """Load a backend (``auto``, ``torch``, ``onnxruntime``, ``tensorrt``) for a model package.

    The one way to get an encoder: :func:`eventclip.runtime.base.select` picks and loads it;
    ``config`` goes to the backend (e.g. ``threads`` for ONNX Runtime).
    """
    choice = select(package, backend, **config)
    log.info("encoder: %s on %s (%s)", choice.backend.name, choice.backend.device, choice.reason)
    return choice.backend


# ---- stage objects: shared by the chain and the daemon's pipeline --------------------------------


class FrameStage:
    """Windows -> (B, 3, S, S) float32 encoder input, by a model card's :class:`Representation`.

    ``device`` None makes frames with numpy (numba on the CPU); a torch device string makes them
    with torch there (one batched launch, no copy back to the host before a torch/TensorRT
    encoder). ``blank`` reports nearly blank inputs (once per cause).
    """

    def __init__(self, representation: Representation, *, device: str | None = None,
                 blank: BlankWatch | None = None) -> None:
        self.representation = representation
        self.device = device
        self.blank = blank

    def __call__(self, windows: Sequence[Any], geometry: Geometry, watch: bool = True) -> Any:
        """Encoder input of windows (objects with ``parts`` and ``n_events``); ``watch`` False skips the
        blank check (a warm-up window)."""
        rep = self.representation
        if self.device is None:
            x = rep([w.parts for w in windows], geometry)
        else:
            events, offsets = stack_windows([w.parts for w in windows])
            x = rep.model_input_torch(rep.frames_torch(events, geometry, offsets, device=self.device))
        if watch and self.blank is not None:
            self.blank.check(x, [w.n_events for w in windows])
        return x

    def of_events(self, events_list: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
        """Encoder input of event arrays that are not windows of a stream (dataset samples), with numpy."""
        x = self.representation(list(events_list), geometry)
        if self.blank is not None:
            self.blank.check(x, [len(ev) for ev in events_list])
        return x

    def running_counts(self, windower: Any, geometry: Geometry) -> RunningCounts | None:
        """Counts kept while windows are open (the daemon's CPU path), or None where frames are made at
        close instead (torch frames, or windows not on a time grid)."""
        if self.device is not None or not RunningCounts.supports(windower):
            return None
        rep = self.representation
        return RunningCounts(windower, geometry, per_polarity=rep.variant != "paper", grid=rep.grid(geometry))

    def from_counts(self, counts: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
        """Encoder input from counts kept while the windows were open (see :meth:`running_counts`)."""
        rep = self.representation
        x = rep.model_input(rep.frames_from_counts(np.stack(counts), geometry))
        if self.blank is not None:
            self.blank.check(x, [int(c.sum()) for c in counts])
        return x


class EncodeStage:
    """Encoder input -> (B, D) float32 unit embeddings, from any backend with ``encode``."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        name = getattr(encoder, "name", "")
        # A backend declares whether its encode() takes torch tensors on its device or numpy
        # (capability "input"); anything else (an EventClip, a test double) is given numpy.
        self.tensor_input = name in BACKENDS and BACKENDS.capabilities(name).get("input") == "torch"

    def __call__(self, x: Any) -> np.ndarray:
        if hasattr(x, "detach") and not self.tensor_input:
            x = as_numpy(x)  # torch frames, but a backend that takes numpy (ONNX Runtime)
        return as_numpy(self.encoder.encode(x))


@dataclass
class Batch:
    """Up to ``batch_size`` consecutive windows and what the stages made of them so far."""

    windows: list[Window]
    inputs: Any = None
    embeddings: np.ndarray | None = None
    results: list[Result] | None = None


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- the chain ------------------------------------------------------------------------------------


class Events:
    """A stream of :class:`EventChunk` objects from a file, an open :class:`~eventclip.io.EventStream` or a
    sensor :class:`~eventclip.sensors.base.Source`; iterable once. ``geometry`` is the sensor size."""

    def __init__(self, source: EventStream | Source) -> None:
        self.source = source

    @property
    def geometry(self) -> Geometry:
        """Sensor size (width, height) in pixels (a Source knows it once open)."""
        geometry = self.source.geometry
        if geometry is None:
            raise RuntimeError(f"{self.source!r} is not open: its geometry is not known yet")
        return geometry

    def __iter__(self) -> Iterator[EventChunk]:
        return iter(self.source)

    def windows(self, window_us: int | None = None, *, mode: Mode = "delta_t", n_events: int | None = None,
                stride_us: int | None = None, t0_us: int | None = None) -> Windows:
        """Windows of the stream (see :func:`eventclip.frames.windows.make_windower` for the modes), µs.

        A file not chunked otherwise is read in spans of ``window_us``, so each window arrives as one
        piece and memory stays bounded by a window (how ``eventclip classify`` always read files).
        """
        stream = self.source
        if (isinstance(stream, EventStream) and window_us is not None and stream.n_events is None
                and stream.delta_t_us is None):
            stream.delta_t_us = window_us
        windower = make_windower(mode, window_us=window_us, n_events=n_events, stride_us=stride_us, t0_us=t0_us)
        return Windows(self, windower)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_events(source: str | Path | EventStream | Source, *, format: str | None = None,
                geometry: tuple[int, int] | None = None) -> Events:
    """The head of the chain: an event file (``format`` skips detection; ``geometry`` (width, height) is for
    files that do not say), an open :class:`~eventclip.io.EventStream`, or a sensor Source (opened here
    when it is not yet)."""
    if isinstance(source, Source):
        if source.geometry is None:
            source.open()
        return Events(source)
    if isinstance(source, EventStream):
        return Events(source)
    return Events(open_file(source, format=format, geometry=geometry))


class Windows:
    """Windows of an event stream, in time order, cut by one windower (state kept across chunks)."""

    def __init__(self, events: Events, windower: Any) -> None:
        self.events = events
        self.windower = windower

    @property
    def geometry(self) -> Geometry:
        return self.events.geometry

    def __iter__(self) -> Iterator[Window]:
        for chunk in self.events:
            yield from self.windower.push(chunk.events, chunk.t_end_us)
        yield from self.windower.flush()

    def frames(self, frames: Representation | FrameStage, batch_size: int = 16) -> Frames:
        """Encoder input per window, made ``batch_size`` windows at a time."""
        stage = frames if isinstance(frames, FrameStage) else FrameStage(frames)
        return Frames(self, stage, batch_size)

    def classify(self, classifier: Classifier, batch_size: int = 16) -> Results:
        """Frames, encoder and heads of a :class:`~eventclip.heads.classifier.Classifier` in one link."""
        frames = FrameStage(classifier.representation, blank=classifier.blank)
        return self.frames(frames, batch_size).encode(classifier.encoder).heads(classifier)


class _Batches:
    """A link that works on batches of windows; iterating it gives one item per window."""

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def _item(self, batch: Batch, i: int) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches():
            for i in range(len(batch.windows)):
                yield self._item(batch, i)


class Frames(_Batches):
    """``(window, frame)`` pairs: each window with its (3, S, S) encoder input."""

    def __init__(self, windows: Windows, stage: FrameStage, batch_size: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.windows, self.stage, self.batch_size = windows, stage, batch_size

    def batches(self) -> Iterator[Batch]:
        for group in batched(self.windows, self.batch_size):
            yield Batch(group, self.stage(group, self.windows.geometry))

    def _item(self, batch: Batch, i: int) -> tuple[Window, Any]:
        return batch.windows[i], batch.inputs[i]

    def encode(self, encoder: Encoder | EncodeStage) -> Embeddings:
        """Unit embeddings from a backend (anything with ``encode``; see :func:`open_encoder`)."""
        return Embeddings(self, encoder if isinstance(encoder, EncodeStage) else EncodeStage(encoder))


class Embeddings(_Batches):
    """``(window, embedding)`` pairs: each window with its (D,) float32 unit embedding."""

    def __init__(self, frames: Frames, stage: EncodeStage) -> None:
        self.frames, self.stage = frames, stage

    def batches(self) -> Iterator[Batch]:
        for batch in self.frames.batches():
            batch.embeddings = self.stage(batch.inputs)
            yield batch

    def _item(self, batch: Batch, i: int) -> tuple[Window, np.ndarray]:
        assert batch.embeddings is not None
        return batch.windows[i], batch.embeddings[i]

    def heads(self, classifier: Classifier) -> Results:
        """Labels and anomaly scores by the classifier's heads (its prompts, few-shot head, anomaly bank)."""
        return Results(self, classifier)


class Results(_Batches):
    """One :class:`~eventclip.heads.base.Result` per window."""

    def __init__(self, embeddings: Embeddings, classifier: Classifier) -> None:
        self.embeddings, self.classifier = embeddings, classifier

    def batches(self) -> Iterator[Batch]:
        for batch in self.embeddings.batches():
            assert batch.embeddings is not None
            batch.results = self.classifier.results(batch.windows, batch.embeddings)
            yield batch

    def _item(self, batch: Batch, i: int) -> Result:
        assert batch.results is not None
        return batch.results[i]

    def with_inputs(self) -> Iterator[tuple[Result, np.ndarray]]:
        """Each Result with the (3, S, S) float32 frame the encoder saw (review videos, explanations)."""
        for batch in self.batches():
            assert batch.results is not None
            yield from zip(batch.results, as_numpy(batch.inputs), strict=True)


# ---- whole files, the CLI's entry points ------------------------------------------------------------


def classify_file(path: str | Path, classifier: Classifier, window_us: int, batch_size: int = 16,
                  **open_kw: Any) -> Iterator[Result]:
    """Results for every ``window_us`` µs window of ``path`` in time order, empty windows included (n_events = 0).

    ``open_kw``: ``format`` and ``geometry`` of :func:`open_events`.
    """
    with open_events(path, **open_kw) as events:
        yield from events.windows(window_us).classify(classifier, batch_size)


def classify_file_inputs(path: str | Path, classifier: Classifier, window_us: int, batch_size: int = 16,
                         **open_kw: Any) -> Iterator[tuple[Result, np.ndarray]]:
    """:func:`classify_file` with each window's model input (3, S, S) float32, the frame the encoder saw."""
    with open_events(path, **open_kw) as events:
        yield from events.windows(window_us).classify(classifier, batch_size).with_inputs()


def embed_file(path: str | Path, encoder: Encoder, representation: Representation, window_us: int,
               batch_size: int = 16, skip_empty: bool = True, **open_kw: Any) -> tuple[np.ndarray, int]:
    """(N, D) embeddings of a recording's ``window_us`` µs windows and how many empty windows were skipped."""
    frames, encode = FrameStage(representation), EncodeStage(encoder)
    chunks, skipped = [], 0
    with open_events(path, **open_kw) as events:
        windows = events.windows(window_us)
        for batch in batched(windows, batch_size):
            keep = [w for w in batch if w.n_events > 0 or not skip_empty]
            skipped += len(batch) - len(keep)
            if keep:
                chunks.append(encode(frames(keep, windows.geometry)))
    if skipped:
        log.info("%s: skipped %d empty windows of %d µs", path, skipped, window_us)
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), skipped
    return np.concatenate(chunks), skipped
