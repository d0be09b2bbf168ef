"""The stream API (eventclip.stream) on the bundled sample through the bundled model: each link against
the parts it is made of, laziness, a sensor Source as the head, and the docs' example script."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eventclip import data, sensors
from eventclip.frames.windows import iter_windows
from eventclip.heads.classifier import build_classifier
from eventclip.heads.prompts import load_prompts
from eventclip.io import open_events as open_file
from eventclip.stream import classify_file, open_encoder, open_events

EXAMPLE = Path(__file__).parents[1] / "examples" / "stream_classify.py"


@pytest.fixture(scope="module")
def classifier():
    pytest.importorskip("torch")
    package = data.default_model_path()
    return build_classifier(package, open_encoder(package, "torch"), load_prompts(data.default_prompts_path()))


class CountingEncoder:
    """The real encoder, counting its calls (to see how far a stopped chain ran)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def encode(self, x):
        self.calls += 1
        return self.inner.encode(x)


def assert_same_results(got, want) -> None:
    """Equal window bounds, event counts and label order; scores equal to float tolerance (a torch
    encoder's last bits vary from call to call)."""
    assert [(r.t_start_us, r.t_end_us, r.n_events) for r in got] == [(r.t_start_us, r.t_end_us, r.n_events)
                                                                     for r in want]
    assert [[name for name, _ in r.labels] for r in got] == [[name for name, _ in r.labels] for r in want]
    np.testing.assert_allclose([p for r in got for _, p in r.labels], [p for r in want for _, p in r.labels],
                               atol=1e-5)
    assert [r.flag for r in got] == [r.flag for r in want]
    assert [r.anomaly is None for r in got] == [r.anomaly is None for r in want]
    np.testing.assert_allclose([r.anomaly for r in got if r.anomaly is not None],
                               [r.anomaly for r in want if r.anomaly is not None], atol=1e-5)


def test_each_link_is_what_its_stage_makes_of_the_link_before(classifier):
    rep, encoder = classifier.representation, classifier.encoder
    sample = data.sample_recording_path()
    with open_file(sample) as stream:
        want_windows = [(w.t_start, w.t_end, w.n_events) for w in iter_windows(stream, window_us=rep.window_us)]
        geometry = stream.geometry
    with open_events(sample) as events:
        windows = list(events.windows(window_us=rep.window_us))
    assert [(w.t_start, w.t_end, w.n_events) for w in windows] == want_windows and len(windows) > 20
    with open_events(sample) as events:
        framed = list(events.windows(window_us=rep.window_us).frames(rep, batch_size=5))
    frames = np.stack([f for _, f in framed])
    assert frames.shape == (len(windows), 3, rep.input_size, rep.input_size) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames, rep([w.parts for w in windows], geometry))
    with open_events(sample) as events:
        embedded = list(events.windows(window_us=rep.window_us).frames(rep, batch_size=5).encode(encoder))
    emb = np.stack([e for _, e in embedded])
    np.testing.assert_allclose(emb, np.concatenate([encoder.encode(frames[i:i + 5]) for i in range(0, len(frames), 5)]),
                               atol=1e-6)
    with open_events(sample) as events:
        results = list(events.windows(window_us=rep.window_us).frames(rep, batch_size=5).encode(encoder)
                       .heads(classifier))
    assert_same_results(results, classifier.results(windows, emb))
    assert_same_results(results, list(classify_file(sample, classifier, rep.window_us, 5)))


def test_a_stopped_chain_encodes_only_the_batches_it_was_asked_for(classifier):
    rep = classifier.representation
    encoder = CountingEncoder(classifier.encoder)
    with open_events(data.sample_recording_path()) as events:
        chain = events.windows(window_us=rep.window_us).frames(rep, batch_size=2).encode(encoder).heads(classifier)
        first = list(itertools.islice(chain, 3))
    assert [r.t_start_us for r in first] == [0, rep.window_us, 2 * rep.window_us] and encoder.calls == 2


def test_a_sensor_source_gives_the_results_of_the_file(classifier):
    rep, sample = classifier.representation, data.sample_recording_path()
    source = sensors.create({"kind": "replay", "path": sample, "realtime": False})
    try:
        got = list(open_events(source).windows(window_us=rep.window_us).classify(classifier))
    finally:
        source.close()
    assert_same_results(got, list(classify_file(sample, classifier, rep.window_us)))


def test_batch_size_must_be_positive(classifier):
    with open_events(data.sample_recording_path()) as events, pytest.raises(ValueError, match="batch_size"):
        events.windows(window_us=100_000).frames(classifier.representation, batch_size=0)


def test_the_example_script_prints_what_classify_file_finds(classifier):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[1] / "src"),
                                                                   os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    rep = classifier.representation
    want = [f"{r.t_start_us:>10} µs  {r.n_events:>7} events  {r.labels[0][0]} {r.labels[0][1]:.2f}"
            for r in classify_file(data.sample_recording_path(), classifier, rep.window_us, batch_size=8)]
    assert out.stdout.splitlines() == want and len(want) > 20


def test_the_docs_example_runs_and_prints_each_window_s_best_label(classifier):
    import ast
    import re

    doc = (Path(__file__).parents[1] / "docs" / "python-api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[1] / "src"),
                                                                   os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    got = [(int(t), ast.literal_eval(labels)) for t, labels in (line.split(" ", 1) for line in out.stdout.splitlines())]
    want = list(classify_file(data.sample_recording_path(), classifier, classifier.representation.window_us, 8))
    assert [(t, [name for name, _ in labels]) for t, labels in got] == [(r.t_start_us, [r.labels[0][0]]) for r in want]


@pytest.mark.parametrize(("name", "tensor_input"), [("torch", True), ("tensorrt", True), ("onnxruntime", False),
                                                    ("", False)])
def test_encode_stage_asks_the_backend_registry_what_encode_takes(name, tensor_input):
    """Torch frames go to a backend as tensors only when it declares ``input: torch``; ONNX Runtime and
    anything that is not a registered backend (an EventClip, a test double) get numpy."""
    import torch

    from eventclip.stream import EncodeStage

    seen = []

    class Encoder:
        def encode(self, x):
            seen.append(type(x))
            return np.ones((len(x), 4), np.float32)

    encoder = Encoder()
    encoder.name = name
    stage = EncodeStage(encoder)
    assert stage.tensor_input is tensor_input
    stage(torch.zeros(2, 3, 8, 8))
    assert seen == [torch.Tensor if tensor_input else np.ndarray]
