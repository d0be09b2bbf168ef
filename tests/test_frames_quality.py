"""Nearly blank windows are reported once per cause, with the fix, by ``classify`` and the daemon's engine:
a large real sensor counted at sensor resolution (washed out), and windows with too few events."""

from __future__ import annotations

import logging

import numpy as np

from eventclip.cli import main
from eventclip.events import Geometry, make_events
from eventclip.frames.preprocess import Representation
from eventclip.frames.quality import BlankWatch, blankness
from eventclip.io import read_events, write_events
from eventclip.model.clip import EventClip
from tests.conftest import SMALL_CLIP, recording

DRIVING = "prophesee_evt3_driving_gen41_1280x720.raw"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "nearly" in r.getMessage()]


def test_sensor_counting_washes_a_large_sensor_out_and_grid_counting_does_not():
    chunk = read_events(recording(DRIVING))
    windows = [chunk.events[i:i + 40_000] for i in range(0, 160_000, 40_000)]
    sensor = Representation(input_size=64, count_at="sensor")
    model = Representation(input_size=64)
    washed = blankness(sensor(windows, chunk.geometry), sensor)
    kept = blankness(model(windows, chunk.geometry), model)
    assert all(b.peak < 0.25 for b in washed) and all(b.peak > 0.5 for b in kept)
    assert all(b.coverage > 0.05 for b in kept)


def test_classify_warns_once_per_cause_and_names_the_fix(tmp_path, caplog):
    prompts = tmp_path / "p.yaml"
    prompts.write_text("classes: [car, person, tree]\n")
    at_sensor = EventClip.from_clip(SMALL_CLIP, seed=0, with_image_encoder=False,
                                    representation={"count_at": "sensor", "window_us": 2_000})
    on_grid = EventClip.from_clip(SMALL_CLIP, seed=0, with_image_encoder=False, representation={"window_us": 2_000})
    rec = recording(DRIVING)  # 9 ms: a few 2 ms windows
    with caplog.at_level(logging.WARNING):
        assert main(["classify", str(rec), "--model", str(at_sensor.save_pretrained(tmp_path / "s")),
                     "--prompts", str(prompts)]) == 0
    warned = _warnings(caplog)
    assert len(warned) == 1 and "count_at: sensor" in warned[0] and str(rec) in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["classify", str(rec), "--model", str(on_grid.save_pretrained(tmp_path / "g")),
                     "--prompts", str(prompts)]) == 0
    assert _warnings(caplog) == []
    caplog.clear()
    sparse = tmp_path / "sparse.raw"  # 3 events in each of 20 windows of 2 ms on a 320x240 sensor
    rng = np.random.default_rng(0)
    write_events(sparse, make_events(rng.integers(0, 320, 60), rng.integers(0, 240, 60), np.ones(60, int),
                                     np.arange(60) * 666), Geometry(320, 240))
    with caplog.at_level(logging.WARNING):
        assert main(["classify", str(sparse), "--model", str(tmp_path / "g"), "--prompts", str(prompts)]) == 0
    warned = _warnings(caplog)
    assert len(warned) == 1 and "--window-us" in warned[0] and "4 events" in warned[0]


def test_watch_counts_every_blank_window_and_skips_empty_ones(caplog):
    rep = Representation(input_size=32, window_us=1_000)
    g = Geometry(320, 240)
    sparse = make_events([5], [5], [1], [0])
    watch = BlankWatch(rep, "test")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            watch.check(rep([sparse, sparse[:0]], g), [1, 0])
    assert watch.counts == {"washed_out": 0, "nearly_empty": 3}
    assert len(_warnings(caplog)) == 1
    busy = make_events(np.arange(300), np.arange(300) % 240, np.ones(300, int), np.arange(300))
    watch.check(rep([busy], g), [300])
    assert watch.counts["nearly_empty"] == 3


def test_daemon_engine_reports_blank_windows(tmp_path, caplog):
    from eventclip.daemon.engine import ClassifierEngine
    from eventclip.frames.windows import Window
    from eventclip.stream import open_encoder

    package = EventClip.from_clip(SMALL_CLIP, seed=0, with_image_encoder=False,
                                  representation={"count_at": "sensor"}).save_pretrained(tmp_path / "m")
    prompts = tmp_path / "p.yaml"
    prompts.write_text("classes: [car, person]\n")
    engine = ClassifierEngine(package, open_encoder(package, "torch"), prompts)
    chunk = read_events(recording(DRIVING))
    window = Window.of(0, 33_000, chunk.events[:50_000])
    with caplog.at_level(logging.WARNING):
        engine.warm_up(chunk.geometry)
        assert _warnings(caplog) == []  # the warm-up window is not the stream's
        engine.model_input([window, window], chunk.geometry)
    warned = _warnings(caplog)
    assert len(warned) == 1 and warned[0].startswith("eventclipd:") and engine.blank.counts["washed_out"] == 2
