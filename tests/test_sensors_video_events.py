"""Video -> events: a synthetic moving bar gives events only at its moving edges, with the right
polarity; threshold crossings and interpolated timestamps; the paper's mode; the CLI on a real
video file written by OpenCV; bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eventclip.cli import main
from eventclip.io import read_events
from eventclip.sensors.errors import VideoError
from eventclip.sensors.video_events import VideoToEvents, paper_frame, refractory_filter, refractory_filter_reference

W, H = 48, 24


def bar(x0: int, width: int = 6, dark: int = 40, bright: int = 200) -> np.ndarray:
    f = np.full((H, W), dark, np.uint8)
    f[:, x0 : x0 + width] = bright
    return f


@pytest.mark.parametrize("mode", ["dvs", "paper"])
def test_moving_bar_gives_on_at_leading_and_off_at_trailing_edge(mode):
    conv = VideoToEvents(mode)
    assert len(conv.push(bar(10), 0)) == 0
    ev = conv.push(bar(13), 10_000)  # bar moves 3 px to the right
    assert len(ev) > 0
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    assert set(np.unique(on["x"])) == {16, 17, 18}  # newly bright columns
    assert set(np.unique(off["x"])) == {10, 11, 12}  # columns the bar left
    assert set(np.unique(ev["y"])) == set(range(H))
    assert np.all(ev["t"] > 0) and np.all(ev["t"] <= 10_000) and np.all(np.diff(ev["t"]) >= 0)
    assert len(conv.push(bar(13), 20_000)) == 0  # nothing moves, nothing fires


def test_dvs_emits_one_event_per_threshold_crossing_at_interpolated_times():
    conv = VideoToEvents("dvs", threshold=0.2, log_eps=1.0)
    a, b = 49.0, 200.0  # ln(201) - ln(50) = 1.391 -> 6 crossings of 0.2
    conv.push(np.full((1, 1), a, np.uint8), 0)
    ev = conv.push(np.full((1, 1), b, np.uint8), 1_000_000)
    assert len(ev) == 6 and np.all(ev["p"] == 1)
    span = np.log(b + 1) - np.log(a + 1)
    want = np.rint(np.arange(1, 7) * 0.2 / span * 1e6)
    np.testing.assert_array_equal(ev["t"], want)
    # the reference kept the remainder: a small further step of 0.1 completes crossing 7
    ev = conv.push(np.full((1, 1), round(np.exp(np.log(201) + 0.1) - 1), np.uint8), 2_000_000)
    assert len(ev) == 1 and ev["p"][0] == 1
    ev = conv.push(np.full((1, 1), a, np.uint8), 3_000_000)
    assert len(ev) >= 6 and np.all(ev["p"] == 0)


def test_refractory_period_drops_close_events_and_kernel_matches_reference():
    conv = VideoToEvents("dvs", threshold=0.2, refractory_us=400_000)
    conv.push(np.full((1, 1), 49, np.uint8), 0)
    ev = conv.push(np.full((1, 1), 200, np.uint8), 1_000_000)
    assert np.all(np.diff(ev["t"]) >= 400_000) and 1 <= len(ev) < 6
    rng = np.random.default_rng(0)
    pixel = np.sort(rng.integers(0, 50, 2000))
    t = np.concatenate([np.sort(rng.integers(0, 10_000, (pixel == p).sum())) for p in range(50)])
    last_a = np.full(50, -(10**12), np.int64)
    last_b = last_a.copy()
    keep_a = refractory_filter_reference(pixel, t, last_a, 300)
    keep_b = refractory_filter(pixel, t, last_b, 300)
    assert 0 < keep_a.sum() < len(t)
    np.testing.assert_array_equal(keep_a, keep_b)
    np.testing.assert_array_equal(last_a, last_b)


def test_paper_mode_threshold_and_frame():
    conv = VideoToEvents("paper")  # default threshold 10 on 0-255
    conv.push(np.array([[100, 100, 100]], np.uint8), 0)
    ev = conv.push(np.array([[110, 111, 89]], np.uint8), 40_000)
    assert ev["x"].tolist() == [1, 2] and ev["p"].tolist() == [1, 0] and set(ev["t"]) == {40_000}
    frames = np.stack([bar(10 + k) for k in range(17)])  # N = 16 differences
    f = paper_frame(frames)
    assert f.dtype == np.float32 and f.max() == 1.0
    moved = np.flatnonzero(f[0])
    assert moved.min() == 10 and moved.max() == 31 and f[:, :10].sum() == 0 and f[:, 32:].sum() == 0


def test_float_frames_in_0_1_equal_uint8():
    a, b = VideoToEvents("dvs"), VideoToEvents("dvs")
    a.push(bar(10), 0)
    b.push(bar(10).astype(np.float32) / 255, 0)
    np.testing.assert_array_equal(a.push(bar(12), 1000), b.push(bar(12).astype(np.float32) / 255, 1000))


@pytest.mark.parametrize(
    "frame, t, match",
    [
        (np.zeros((H, W, 3), np.uint8), 10, "2-D grayscale"),
        (np.full((H, W), 2.0, np.float32), 10, r"\[0, 1\]"),
        (np.zeros((H, W + 1), np.uint8), 10, "same size"),
        (np.zeros((H, W), np.uint8), 0, "not after the previous frame"),
        (np.zeros((H, W), np.int32), 10, "uint8"),
    ],
)
def test_bad_frames_raise(frame, t, match):
    conv = VideoToEvents("dvs")
    conv.push(np.zeros((H, W), np.uint8), 0)
    with pytest.raises(VideoError, match=match):
        conv.push(frame, t)


def test_bad_settings_raise():
    with pytest.raises(VideoError, match="unknown video mode"):
        VideoToEvents("v2e")  # type: ignore[arg-type]
    with pytest.raises(VideoError, match="on_threshold must be > 0"):
        VideoToEvents("dvs", on_threshold=0)
    with pytest.raises(VideoError, match="refractory_us"):
        VideoToEvents("dvs", refractory_us=-1)


def _write_video(path, n=8, fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for k in range(n):
        writer.write(cv2.cvtColor(bar(8 + 3 * k), cv2.COLOR_GRAY2BGR))
    writer.release()


@pytest.mark.parametrize("out_name, mode", [("out.raw", "dvs"), ("out.aedat4", "paper")])
def test_video2events_cli_writes_a_real_event_file(tmp_path, capsys, out_name, mode):
    video = tmp_path / "bar.avi"
    _write_video(video)
    out = tmp_path / out_name
    assert main(["video2events", str(video), str(out), "--mode", mode,
                 "--threshold", "0.3" if mode == "dvs" else "30"]) == 0
    assert "8 frames at 25 fps" in capsys.readouterr().out
    chunk = read_events(out)
    assert (chunk.geometry.width, chunk.geometry.height) == (W, H)
    ev = chunk.events
    assert len(ev) > 0 and np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() <= 7 * 40_000
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    # the bar moves right: ON events lead OFF events; far-away columns never fire
    assert on["x"].mean() > off["x"].mean()
    assert ev["x"].min() >= 6 and ev["x"].max() <= 8 + 3 * 7 + 6 + 1


def test_video2events_unreadable_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    assert main(["video2events", str(bad), str(tmp_path / "o.raw")]) == 1
    err = capsys.readouterr().err
    assert "not_a_video.mp4" in err and ("cannot open" in err or "decoded no frames" in err)
    assert main(["video2events", str(tmp_path / "missing.avi"), str(tmp_path / "o.raw")]) == 1
    assert "cannot open" in capsys.readouterr().err
