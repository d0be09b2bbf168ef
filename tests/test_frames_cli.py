"""``eventclip frames`` on a real EVT 3.0 file written through eventclip.io: one PNG per window
(empty windows included), pixel values equal the frame, polarity colours, bad options."""

from __future__ import annotations

import numpy as np
from PIL import Image

from eventclip.cli import main
from eventclip.events import Geometry, make_events
from eventclip.frames.accumulate import event_frames
from eventclip.io import write_events

G = Geometry(64, 48)


def _recording(tmp_path):
    # 3 events in window 0, nothing in window 1, 2 events in window 2 (windows of 1000 µs)
    ev = make_events([1, 1, 5, 10, 11], [2, 2, 3, 40, 40], [1, 1, 0, 0, 1], [100, 200, 900, 2100, 2500])
    path = tmp_path / "rec.raw"
    write_events(path, ev, G)
    return path, ev


def test_one_png_per_window_with_exact_values(tmp_path, capsys):
    path, ev = _recording(tmp_path)
    out = tmp_path / "png"
    assert main(["frames", str(path), "--window-us", "1000", "--out", str(out)]) == 0
    assert "wrote 3 PNG frames" in capsys.readouterr().out
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["frame_00000_0.png", "frame_00001_1000.png", "frame_00002_2000.png"]
    first = np.asarray(Image.open(pngs[0]))
    want = np.rint(event_frames(ev[:3], G)[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(first, want)
    assert first[2, 1] == round(2 / 3 * 255)
    assert not np.asarray(Image.open(pngs[1])).any()


def test_polarity_previews_and_model_view(tmp_path):
    path, _ = _recording(tmp_path)
    assert main(["frames", str(path), "--window-us", "1000", "--out", str(tmp_path / "p"),
                 "--variant", "polarity"]) == 0
    img = np.asarray(Image.open(sorted((tmp_path / "p").glob("*.png"))[2]))
    assert img.shape == (48, 64, 3)
    assert img[40, 11, 0] > 0 and img[40, 11, 1] == 0  # ON -> red
    assert img[40, 10, 1] > 0 and img[40, 10, 0] == 0  # OFF -> green
    assert main(["frames", str(path), "--window-us", "1000", "--out", str(tmp_path / "m"), "--model-view",
                 "--input-size", "32", "--max-frames", "1"]) == 0
    pngs = list((tmp_path / "m").glob("*.png"))
    assert len(pngs) == 1 and Image.open(pngs[0]).size == (32, 32)


def test_bad_options_are_clear_errors(tmp_path, capsys):
    path, _ = _recording(tmp_path)
    assert main(["frames", str(path), "--window-us", "0", "--out", str(tmp_path)]) == 2
    assert "window_us" in capsys.readouterr().err
    assert main(["frames", str(path), "--geometry", "64by48", "--out", str(tmp_path)]) == 2
    assert "--geometry must look like 640x480" in capsys.readouterr().err
