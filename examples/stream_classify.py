"""Classify a recording from Python with the stream API, stage by stage, as eventclipd does.

Run: python examples/stream_classify.py [RECORDING [MODEL [PROMPTS]]]
(default: the bundled sample through the bundled model and its prompts)
"""

import sys

from eventclip import data
from eventclip.heads.classifier import build_classifier
from eventclip.heads.prompts import load_prompts
from eventclip.stream import open_encoder, open_events

recording = sys.argv[1] if len(sys.argv) > 1 else data.sample_recording_path()
model = sys.argv[2] if len(sys.argv) > 2 else data.default_model_path()
prompts = sys.argv[3] if len(sys.argv) > 3 else data.default_prompts_path()

encoder = open_encoder(model)  # the backend eventclipd would pick ("auto")
classifier = build_classifier(model, encoder, load_prompts(prompts))
rep = classifier.representation  # the model card's frames: window length, variant, input size

with open_events(recording) as events:
    windows = events.windows(window_us=rep.window_us)  # stop here to get Window objects (µs, events)
    frames = windows.frames(rep, batch_size=8)  # (window, (3, S, S) float32 frame) pairs
    embeddings = frames.encode(encoder)  # (window, (D,) unit embedding) pairs
    for result in embeddings.heads(classifier):  # one Result per window
        best = f"{result.labels[0][0]} {result.labels[0][1]:.2f}" if result.labels else "-"
        print(f"{result.t_start_us:>10} µs  {result.n_events:>7} events  {best}")
