"""The synthetic benchmark: real EVT 3.0 files, deterministic per seed, events where edges move."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest

from eventclip.errors import ConfigError
from eventclip.io import read_events
from eventclip.train import synth

TINY = synth.SynthConfig(seed=3, emoji=2, letters=1, digits=1, samples_per_class=2)


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("synth") / "a", TINY)


def test_layout_and_real_event_files(tiny):
    classes = json.loads((tiny / "classes.json").read_text())
    assert [c["group"] for c in classes] == ["emoji", "emoji", "letter", "digit"]
    assert classes[3]["text"] == "the handwritten digit zero"
    rows = list(csv.DictReader(open(tiny / "index.csv")))
    assert len(rows) == 4 * 2
    for row in rows:
        assert row["events"].endswith(".raw") and (tiny / row["image"]).is_file()
        chunk = read_events(tiny / row["events"])
        assert (chunk.geometry.width, chunk.geometry.height) == (64, 64)
        ev = chunk.events
        assert len(ev) > 1000 and np.all(np.diff(ev["t"]) >= 0)
        assert 250_000 <= ev["t"][-1] <= 300_000 and set(np.unique(ev["p"])) == {0, 1}
    meta = json.loads((tiny / "meta.json").read_text())
    assert any("OpenMoji" in c for c in meta["credits"])


def test_deterministic_for_a_seed(tiny, tmp_path):
    again = synth.generate(tmp_path / "b", TINY)
    assert _digest(again) == _digest(tiny)
    other = synth.generate(tmp_path / "c", synth.SynthConfig(**{**TINY.__dict__, "seed": 4}))
    assert _digest(other) != _digest(tiny)


def test_refuses_non_empty_folder(tiny):
    with pytest.raises(ConfigError, match="not empty"):
        synth.generate(tiny, TINY)


def test_video_to_events_only_where_edges_move_with_right_polarity():
    rng = np.random.default_rng(0)
    frames = np.full((5, 16, 16), 0.2, np.float32)
    for i in range(5):
        frames[i, :, : 4 + i] = 0.8  # a bright bar growing to the right, one column per frame
    t = np.arange(5, dtype=np.int64) * 1000
    ev = synth.video_to_events(frames, t, 0.25, rng)
    assert len(ev) > 0 and np.all(ev["p"] == 1)  # dark -> bright only
    assert set(np.unique(ev["x"])) == {4, 5, 6, 7}  # only the columns that changed
    static = synth.video_to_events(np.repeat(frames[:1], 5, 0), t, 0.25, rng)
    assert len(static) == 0
    # ln((204 + 1) / (51 + 1)) = 1.37 -> 5 whole thresholds of 0.25 per changed pixel
    per_pixel = np.unique(ev["x"].astype(int) * 16 + ev["y"], return_counts=True)[1]
    assert set(per_pixel) == {5}
    noisy = synth.video_to_events(np.repeat(frames[:1], 5, 0), t, 0.25, rng, noise_hz_per_px=1000.0)
    assert 0 < len(noisy) and np.all(np.diff(noisy["t"]) >= 0)  # ~1000 Hz x 256 px x 4 ms


def test_sample_recording_has_labelled_spans(tmp_path):
    cfg = synth.SynthConfig(seed=0, emoji=2, letters=1, digits=1, samples_per_class=1)
    names = ["digit_0", "letter_a"]
    path = synth.make_sample(tmp_path, names, cfg, seed=9)
    info = json.loads((tmp_path / "sample.json").read_text())
    ev = read_events(path).events
    assert [s["label"] for s in info["segments"]] == names and info["events"] == len(ev)
    spans = info["segments"]
    assert spans[0]["t_end_us"] == spans[1]["t_start_us"] and ev["t"][-1] < spans[1]["t_end_us"]
    assert np.count_nonzero(ev["t"] < spans[0]["t_end_us"]) > 1000
    with pytest.raises(ConfigError, match="not categories"):
        synth.make_sample(tmp_path / "x", ["no_such"], cfg, seed=1)
