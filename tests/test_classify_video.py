"""``eventclip classify --video/--frames-dir``: a review video of a real recording, decoded back with
OpenCV (frame count = windows, size), and PNGs equal to the video's frames up to MP4 compression."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eventclip.cli import main
from tests.conftest import recording
from tests.test_daemon_stream import SPINNER, _text_cache, package, prompts  # noqa: F401 - fixtures

cv2 = pytest.importorskip("cv2", reason="opencv is not installed (extra: video)")


def test_video_has_one_frame_per_window_and_matches_the_pngs(package, prompts, tmp_path, capsys):  # noqa: F811
    video, folder = tmp_path / "review.mp4", tmp_path / "frames"
    assert main(["classify", str(recording(SPINNER)), "--model", str(package), "--prompts", str(prompts),
                 "--backend", "onnxruntime", "--window-us", "10000", "--video", str(video),
                 "--frames-dir", str(folder)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    pngs = sorted(folder.glob("window_*.png"))
    assert len(rows) == len(pngs) > 5
    assert [int(p.stem.split("_")[2]) for p in pngs] == [int(r.split()[0]) for r in rows]  # t_start_us in order
    capture = cv2.VideoCapture(str(video))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame[:, :, ::-1])
    capture.release()
    assert len(decoded) == len(rows)
    assert {f.shape for f in decoded} == {(540, 960, 3)}
    for i in (0, len(decoded) // 2, len(decoded) - 1):
        png = np.asarray(Image.open(pngs[i]).convert("RGB"), dtype=np.float32)
        assert np.abs(decoded[i].astype(np.float32) - png).mean() < 8  # the same picture, MP4-compressed
    assert np.abs(decoded[0].astype(np.float32) - decoded[-1]).mean() > 0.5  # and the frames differ


def test_a_file_that_is_not_events_gives_the_error_before_any_output(package, prompts, tmp_path, capsys):  # noqa: F811
    text = tmp_path / "notes.md"
    text.write_text("# not events\n")
    assert main(["classify", str(text), "--model", str(package), "--prompts", str(prompts),
                 "--backend", "onnxruntime"]) != 0
    out, err = capsys.readouterr()
    assert out == "" and "notes.md" in err and "--format" in err
