"""classify / anomaly fit / fewshot fit end to end: real DAT files, a real (tiny) CLIP, the torch backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eventclip.cli import main
from eventclip.events import make_events
from eventclip.heads.classifier import build_classifier
from eventclip.heads.prompts import parse_prompts
from eventclip.heads.zero_shot import ZeroShotHead
from eventclip.io import write_events
from eventclip.model.clip import EventClip
from eventclip.model.configs import TINY_CONFIG
from eventclip.stream import classify_file
from tests.conftest import recording

W, H, WINDOW = 64, 48, 50_000
PROMPTS = ("templates: ['a photo of a {}.']\nclasses: [left, right, middle]\ntop_k: 2\n"
           "anomaly: {normal: [a calm scene], abnormal: [a fire, a fall], threshold: 0.5}\n")


def blob(side: str, t0: int, n: int = 300) -> np.ndarray:
    """The same pattern every time (so equal windows give equal frames): a square on one side."""
    rng = np.random.default_rng(0)
    x0 = 5 if side == "left" else 40
    x = x0 + rng.integers(0, 16, n)
    y = 10 + rng.integers(0, 16, n)
    t = t0 + np.sort(rng.integers(0, WINDOW, n))
    return make_events(x, y, rng.integers(0, 2, n), t)


def scene(path: Path, sides: list[str | None]) -> Path:
    """One window per entry: a blob on that side, or no events at all (None)."""
    parts = [blob(s, i * WINDOW) for i, s in enumerate(sides) if s is not None]
    events = np.concatenate(parts)
    if sides[-1] is None:  # an event just before the end closes the final empty window
        events = np.concatenate([events, make_events([0], [0], [1], [len(sides) * WINDOW - 1])])
    write_events(path, events, (W, H), format="dat")
    return path


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pkg") / "tiny"
    EventClip.from_clip(TINY_CONFIG, seed=0, representation={"window_us": WINDOW}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model(package) -> EventClip:
    return EventClip.from_pretrained(package)


def test_windows_times_and_empty_windows_are_reported(tmp_path, package, model):
    path = scene(tmp_path / "s.dat", ["left", "left", None, "right"])
    clf = build_classifier(package, model, parse_prompts(PROMPTS), cache_dir=tmp_path / "cache")
    results = list(classify_file(path, clf, WINDOW))
    assert [(r.t_start_us, r.t_end_us) for r in results] == [(i * WINDOW, (i + 1) * WINDOW) for i in range(4)]
    assert [r.n_events for r in results] == [300, 300, 0, 300]
    assert all(len(r.labels) == 2 and r.labels[0][1] >= r.labels[1][1] for r in results)
    assert all(r.anomaly is not None and 0.0 <= r.anomaly <= 1.0 for r in results)
    assert results[0].labels == results[1].labels  # identical frames -> identical answers


def test_zero_shot_end_to_end_returns_the_label_of_the_matching_frame(tmp_path, package, model):
    path = scene(tmp_path / "s.dat", ["left", "right", "left", "right"])
    clf = build_classifier(package, model, parse_prompts(PROMPTS), cache_dir=tmp_path / "cache")
    geometry = __import__("eventclip.io", fromlist=["open_events"]).open_events(path).geometry
    left, right = clf.embed([blob("left", 0), blob("right", 0)], geometry)
    clf.head = ZeroShotHead(np.stack([right, left]), ["right", "left"], 100.0, top_k=1)
    got = [r.labels[0][0] for r in classify_file(path, clf, WINDOW, batch_size=3)]
    assert got == ["left", "right", "left", "right"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_classify_json_matches_library(tmp_path, capsys, package, model):
    path = scene(tmp_path / "s.dat", ["left", None, "right"])
    (tmp_path / "p.yaml").write_text(PROMPTS)
    code, out, _ = run_cli(capsys, "classify", str(path), "--model", str(package),
                           "--prompts", str(tmp_path / "p.yaml"),
                           "--json", "--backend", "torch", "--cache-dir", str(tmp_path / "c"))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    clf = build_classifier(package, model, parse_prompts(PROMPTS), cache_dir=tmp_path / "c2")
    want = [r.to_dict() for r in classify_file(path, clf, WINDOW)]
    assert len(rows) == 3
    for a, b in zip(rows, want, strict=True):
        assert (a["t_start_us"], a["t_end_us"], a["n_events"]) == (b["t_start_us"], b["t_end_us"], b["n_events"])
        assert [x["label"] for x in a["labels"]] == [x["label"] for x in b["labels"]]
        assert a["anomaly"] == pytest.approx(b["anomaly"], abs=1e-5)
    code, out, _ = run_cli(capsys, "classify", str(path), "--model", str(package),
                           "--prompts", str(tmp_path / "p.yaml"),
                           "--backend", "torch", "--cache-dir", str(tmp_path / "c"))
    assert code == 0 and out.splitlines()[0].split()[:3] == ["t_start_us", "t_end_us", "events"]
    assert len(out.splitlines()) == 4


def test_cli_errors_are_clear(tmp_path, capsys, package):
    path = scene(tmp_path / "s.dat", ["left"])
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(package),
                           "--prompts", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: cannot read" in err
    (tmp_path / "empty.yaml").write_text("classes: []\n")
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(package),
                           "--prompts", str(tmp_path / "empty.yaml"))
    assert code == 2 and "empty.yaml:1: classes: the class list is empty" in err
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(package), "--backend", "torch")
    assert code == 1 and "needs prompts" in err
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(package),
                           "--head", "probe", "--backend", "torch")
    assert code == 1 and "no head named 'probe'" in err
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(tmp_path),
                           "--prompts", str(tmp_path / "empty.yaml"))
    assert code == 2 and "empty.yaml" in err
    code, out, err = run_cli(capsys, "classify", str(path), "--model", str(package), "--geometry", "64by48")
    assert code == 2 and "--geometry must look like 640x480" in err and out == ""
    code, _, err = run_cli(capsys, "classify", str(path), "--model", str(package), "--window-us", "0")
    assert code == 2 and "--window-us must be > 0" in err


def test_anomaly_fit_then_classify_uses_the_bank(tmp_path, capsys, package):
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(package, pkg)
    normal = scene(tmp_path / "normal.dat", ["left"] * 6)
    code, out, _ = run_cli(capsys, "anomaly", "fit", str(normal), "--model", str(pkg), "--backend", "torch")
    assert code == 0 and "6 normal windows" in out
    test = scene(tmp_path / "test.dat", ["left", "right"])
    code, out, _ = run_cli(capsys, "classify", str(test), "--model", str(pkg), "--prompts", _prompts(tmp_path),
                           "--json", "--backend", "torch", "--cache-dir", str(tmp_path / "c"))
    scores = [json.loads(line)["anomaly"] for line in out.splitlines()]
    assert scores[0] < 0.5 < scores[1] and json.loads(out.splitlines()[1])["flag"] is True
    copy = EventClip.from_pretrained(pkg).save_pretrained(tmp_path / "copy")  # heads travel with the package
    assert ((copy / "heads" / "anomaly.npz").is_file()
            and "heads/anomaly.npz" in EventClip.from_pretrained(copy).card.files)


def _prompts(tmp_path: Path) -> str:
    (tmp_path / "p.yaml").write_text(PROMPTS)
    return str(tmp_path / "p.yaml")


@pytest.mark.parametrize("method", ["tip", "probe"])
def test_fewshot_fit_then_classify_with_the_head(tmp_path, capsys, package, model, method):
    """A random tiny ViT maps all frames to nearly the same direction (cos ~ 0.9999), so the tip cache
    gets a very sharp affinity (beta) to tell them apart; the probe is checked against the saved head."""
    import shutil

    from eventclip.heads.saved import load_head

    pkg = tmp_path / "pkg"
    shutil.copytree(package, pkg)
    for side in ("left", "right"):
        (tmp_path / "support" / side).mkdir(parents=True)
        for i in range(2):
            scene(tmp_path / "support" / side / f"r{i}.dat", [side, side])
    sharp = ["--alpha", "10", "--beta", "100000"] if method == "tip" else []
    code, out, err = run_cli(capsys, "fewshot", "fit", str(tmp_path / "support"), "--model", str(pkg), "--k", "2",
                             "--method", method, "--backend", "torch", *sharp)
    assert code == 0, err
    assert f"{method} head, 2 classes, k=2, 8 support windows" in out
    test = scene(tmp_path / "test.dat", ["right", "left", "right"])
    code, out, _ = run_cli(capsys, "classify", str(test), "--model", str(pkg), "--head", method, "--top-k", "1",
                           "--json", "--backend", "torch")
    got = [json.loads(line)["labels"][0]["label"] for line in out.splitlines()]
    if method == "tip":
        assert got == ["right", "left", "right"]
    head = load_head(pkg, method)
    geometry = __import__("eventclip.io", fromlist=["open_events"]).open_events(test).geometry
    clf = build_classifier(pkg, model, head=method)
    emb = clf.embed([blob(s, 0) for s in ("right", "left", "right")], geometry)
    assert got == [row[0][0] for row in head(emb)]
    code, _, err = run_cli(capsys, "fewshot", "fit", str(tmp_path / "support"), "--model", str(pkg), "--k", "5")
    assert code == 2 and "has 2 recordings, --k 5 needs at least 5" in err


def test_cli_format_and_geometry_options(tmp_path, capsys, package):
    path = scene(tmp_path / "s.dat", ["left", "right"])
    code, out, err = run_cli(capsys, "classify", str(path), "--model", str(package), "--prompts", _prompts(tmp_path),
                             "--format", "dat", "--geometry", f"{W}x{H}", "--json", "--backend", "torch",
                             "--cache-dir", str(tmp_path / "c"))
    assert code == 0, err
    assert [json.loads(line)["n_events"] for line in out.splitlines()] == [300, 300]


def test_classify_a_real_recording(tmp_path, package, model):
    path = recording("prophesee_evt2_spinner_excerpt_gen3_640x480.raw")
    clf = build_classifier(package, model, parse_prompts(PROMPTS), cache_dir=tmp_path / "c")
    results = list(classify_file(path, clf, 33_000))
    assert len(results) >= 2 and sum(r.n_events for r in results) > 0
    assert all(r.t_end_us - r.t_start_us == 33_000 for r in results)
    assert all(results[i].t_end_us == results[i + 1].t_start_us for i in range(len(results) - 1))


def test_classify_path_needs_no_torch(tmp_path, package):
    """The daemon's path (card, prompts, heads, classify) must import and run with torch unavailable."""
    import subprocess
    import sys

    (tmp_path / "p.yaml").write_text(PROMPTS)
    path = scene(tmp_path / "s.dat", ["left", "right"])
    code = f"""
import sys
sys.modules['torch'] = None
sys.modules['open_clip'] = None
import numpy as np
from eventclip.heads.classifier import build_classifier
from eventclip.stream import classify_file
from eventclip.heads.prompts import load_prompts

class Encoder:
    def encode(self, x):
        return x.reshape(len(x), -1)[:, :32]
    def encode_text(self, prompts):
        return np.random.default_rng(0).standard_normal((len(prompts), 32))

clf = build_classifier({str(package)!r}, Encoder(), load_prompts({str(tmp_path / 'p.yaml')!r}),
                       cache_dir={str(tmp_path)!r})
print(len(list(classify_file({str(path)!r}, clf, {WINDOW}))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
