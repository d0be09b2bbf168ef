"""The ``video`` source: a real video file written and decoded by OpenCV, converted live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from eventclip.errors import ConfigError
from eventclip.sensors import create
from eventclip.sensors.errors import SensorError
from eventclip.sensors.video import VideoConfig, VideoSource
from eventclip.sensors.video_events import VideoToEvents

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """30 frames at 30 fps, 64x48: a bright square moving right on a dark background (MJPG AVI)."""
    path = tmp_path_factory.mktemp("video") / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    assert writer.isOpened()
    for k in range(30):
        frame = np.full((48, 64, 3), 20, np.uint8)
        frame[16:32, 2 * k : 2 * k + 12] = 230
        writer.write(frame)
    writer.release()
    return path


def decoded_gray(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()
    return frames


def test_file_events_match_the_converter_on_the_same_frames(clip: Path) -> None:
    src = create({"kind": "video", "path": str(clip), "realtime": False, "threshold": 0.3})
    with src:
        assert src.geometry is not None and (src.geometry.width, src.geometry.height) == (64, 48)
        assert src.clock == "sensor"
        chunks = list(src)
    conv = VideoToEvents("dvs", threshold=0.3)
    frames = decoded_gray(clip)
    expected = [conv.push(f, round(i * 1e6 / 30.0)) for i, f in enumerate(frames)]
    assert len(chunks) == len(frames) == 30
    for got, want in zip(chunks, expected, strict=True):
        np.testing.assert_array_equal(got.events, want)
    assert sum(len(c) for c in chunks) > 100  # the moving square does make events
    assert chunks[-1].t_end_us == round(29 * 1e6 / 30) + 1


def test_file_is_paced_at_its_frame_rate_on_an_injected_clock(clip: Path) -> None:
    now = [50.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    src = VideoSource(VideoConfig(path=clip), clock=lambda: now[0], sleep=sleep)
    src.open()
    start = now[0]
    n = sum(1 for _ in src)
    src.close()
    assert n == 30
    assert now[0] - start == pytest.approx(29 / 30, rel=0.01)


def test_resize_changes_the_geometry(clip: Path) -> None:
    with create({"kind": "video", "path": str(clip), "realtime": False, "width": 32, "height": 24}) as src:
        chunks = list(src)
    assert (src.geometry.width, src.geometry.height) == (32, 24)
    ev = np.concatenate([c.events for c in chunks])
    assert ev["x"].max() < 32 and ev["y"].max() < 24


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.mp4"):
        create({"kind": "video", "path": str(tmp_path / "nope.mp4")}).open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(SensorError, match="OpenCV cannot open"):
        create({"kind": "video", "path": str(junk)}).open()
    with pytest.raises(ValidationError, match="exactly one of path"):
        create({"kind": "video"})


def test_a_file_never_reconnects(clip: Path) -> None:
    assert VideoConfig(path=clip).reconnect.enabled is False
    assert VideoConfig(camera_index=0).reconnect.enabled is True


def test_missing_opencv_names_the_extra(monkeypatch, clip: Path) -> None:
    import sys

    from eventclip._optional import MissingDependencyError

    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'eventclip\[video\]'"):
        create({"kind": "video", "path": str(clip)}).open()
