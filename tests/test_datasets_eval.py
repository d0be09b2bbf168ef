"""Every eval loader on a tiny fake copy of its dataset's on-disk layout, written in the real file formats.

The bytes follow each format's spec (N-MNIST 5-byte ATIS records, jAER AEDAT 2.0 DVS128 addresses,
cAER AEDAT 3.1 polarity packets, N-ImageNet npz, MATLAB v5 via scipy, EVT 3.0 via eventclip.io),
and every test reads the events back through the loader to check they decode to what was written.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from eventclip.datasets import load_dataset
from eventclip.datasets.asldvs import ASL_LETTERS
from eventclip.datasets.base import EventSlice
from eventclip.datasets.cifar10dvs import CIFAR10DVS_CLASSES
from eventclip.datasets.dvsgesture import DVSGESTURE_CLASSES
from eventclip.datasets.nimagenet import NIMAGENET_PAPER
from eventclip.datasets.reading import SampleReader, read_sample
from eventclip.errors import ConfigError
from eventclip.events import Geometry, make_events
from eventclip.io.errors import EventFormatError


def events_for(seed: int, n: int, width: int, height: int, t0: int = 0) -> np.ndarray:
    """n time-ordered random events inside width x height (µs timestamps from t0)."""
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.integers(1, 50, n))
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n), t)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return all(np.array_equal(a[f], b[f]) for f in ("x", "y", "p", "t"))


# -- spec-following writers ----------------------------------------------------------------------

def write_nmnist_bin(path: Path, ev: np.ndarray) -> None:
    """40-bit big-endian records: x (8), y (8), polarity (1), timestamp (23 bits, µs)."""
    rec = np.zeros((len(ev), 5), dtype=np.uint8)
    t = ev["t"].astype(np.int64)
    rec[:, 0], rec[:, 1] = ev["x"], ev["y"]
    rec[:, 2] = (ev["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    rec[:, 3], rec[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    rec.tofile(path)


def write_aedat2_dvs128(path: Path, ev: np.ndarray) -> None:
    """jAER AEDAT 2.0: '#' header, then big-endian (address, timestamp); DVS128 address bits:
    0 = raw polarity (0 = ON), 1-7 = 127 - x, 8-14 = 127 - y."""
    addr = ((127 - ev["y"].astype(np.uint32)) << 8) | ((127 - ev["x"].astype(np.uint32)) << 1) | (ev["p"] == 0)
    body = np.empty((len(ev), 2), dtype=">u4")
    body[:, 0], body[:, 1] = addr, ev["t"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n" + body.tobytes())


def write_aedat31_dvs128(path: Path, ev: np.ndarray) -> None:
    """cAER AEDAT 3.1: header to #!END-HEADER, one polarity packet (28-byte header + 8-byte events:
    uint32 data = valid | p << 1 | y << 2 | x << 17, int32 timestamp)."""
    data = 1 | (ev["p"].astype(np.uint32) << 1) | (ev["y"].astype(np.uint32) << 2) | (ev["x"].astype(np.uint32) << 17)
    rec = np.empty((len(ev), 2), dtype="<u4")
    rec[:, 0], rec[:, 1] = data, ev["t"]
    head = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, len(ev), len(ev), len(ev))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n" + head + rec.tobytes())


def write_nimagenet_npz(path: Path, ev: np.ndarray) -> None:
    """The released N-ImageNet layout: a structured 'event_data' array with x, y, t, p."""
    data = np.empty(len(ev), dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "u1")])
    for f in ("x", "y", "t", "p"):
        data[f] = ev[f]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, event_data=data)


# -- loaders -------------------------------------------------------------------------------------

def test_nmnist_official_split_and_decode(tmp_path):
    written = {}
    for split, n in (("Train", 2), ("Test", 1)):
        for d in range(10):
            for i in range(n):
                ev = events_for(100 * d + i + (50 if split == "Test" else 0), 30, 34, 34)
                path = tmp_path / split / str(d) / f"{i:05d}.bin"
                write_nmnist_bin(path, ev)
                written[path] = ev
    ds = load_dataset("nmnist", tmp_path)
    assert ds.classes == [str(i) for i in range(10)] and ds.texts[3] == "the handwritten digit three"
    assert len(ds.train) == 20 and len(ds.test) == 10
    assert {s.label for s in ds.test} == set(range(10))
    for s in ds.train + ds.test:
        assert s.path.parent.name == str(s.label)
        events, geo = read_sample(s, ds.geometry)
        assert geo == Geometry(34, 34) and same(events, written[s.path])
    (tmp_path / "Test" / "x").mkdir()
    with pytest.raises(ConfigError, match="unexpected folders"):
        load_dataset("nmnist", tmp_path)


def test_ncaltech101_layout_split_and_background(tmp_path):
    base = tmp_path / "Caltech101"
    for c, name in enumerate(("Faces_easy", "accordion", "car_side", "BACKGROUND_Google")):
        for i in range(5):
            write_nmnist_bin(base / name / f"image_{i + 1:04d}.bin", events_for(10 * c + i, 40, 240, 180))
    ds = load_dataset("ncaltech101", tmp_path)
    assert ds.classes == ["Faces_easy", "accordion", "car_side"]
    assert ds.texts == ["face", "accordion", "car side"]
    assert len(ds.train) == 12 and len(ds.test) == 3
    assert not {s.path for s in ds.train} & {s.path for s in ds.test}
    again = load_dataset("ncaltech101", tmp_path)
    assert [s.path for s in again.test] == [s.path for s in ds.test]
    events, geo = read_sample(ds.test[0], ds.geometry)
    assert geo == Geometry(240, 180) and len(events) == 40


def test_nimagenet_lists_synsets_and_paper_protocol(tmp_path):
    wnids = [f"n{i:08d}" for i in range(104)]
    big = events_for(7, 31_000, 640, 480)
    for i, w in enumerate(wnids):
        write_nimagenet_npz(tmp_path / "extracted_train" / w / f"{w}_1.npz", events_for(i, 20, 640, 480))
        write_nimagenet_npz(tmp_path / "extracted_val" / w / f"ILSVRC_val_{i}.npz",
                            big if i < 3 else events_for(1000 + i, 20, 640, 480))
    (tmp_path / "LOC_synset_mapping.txt").write_text("\n".join(f"{w} thing {i}, other" for i, w in enumerate(wnids)))
    ds = load_dataset("nimagenet", tmp_path)
    assert len(ds.classes) == 104 and ds.texts[5] == "thing 5" and len(ds.train) == len(ds.test) == 104
    # The authors' file lists decide membership when present (paths from their machine: last two parts count).
    (tmp_path / "val_list.txt").write_text(f"/data/N_Imagenet/extracted_val/{wnids[0]}/ILSVRC_val_0.npz\n")
    listed = load_dataset("nimagenet", tmp_path)
    assert [s.path.name for s in listed.test] == ["ILSVRC_val_0.npz"] and "file lists" in listed.notes["split"]
    (tmp_path / "val_list.txt").unlink()

    paper = load_dataset("nimagenet", tmp_path, protocol="paper")
    again = load_dataset("nimagenet", tmp_path, protocol="paper")
    assert len(paper.classes) == NIMAGENET_PAPER["n_classes"] == 100
    assert len(paper.candidates) == 20 and paper.candidates == again.candidates
    assert paper.notes["protocol"]["held_out_classes"] == [paper.classes[c] for c in paper.candidates]
    assert paper.slice == EventSlice(n_events=30_000, seed=0)
    sl = paper.slice
    cut = sl(big, 4)
    assert len(cut) == 30_000 and same(cut, sl(big, 4))
    start = int(np.searchsorted(big["t"], cut["t"][0]))
    assert same(cut, big[start:start + 30_000])
    assert len(sl(events_for(0, 10, 4, 4), 0)) == 10
    keys = [s.key() for s in paper.test]
    assert keys == [s.key() for s in again.test] and len(set(keys)) == len(keys)
    assert not same(sl(big, keys[0]), sl(big, keys[1]))  # each sample draws its own slice
    with pytest.raises(ConfigError, match="protocol"):
        load_dataset("nimagenet", tmp_path, protocol="other")
    with pytest.raises(ConfigError, match="only for nimagenet"):
        load_dataset("nmnist", tmp_path, protocol="paper")


def test_cifar10dvs_aedat2_split_by_number(tmp_path):
    written = {}
    for c, name in enumerate(CIFAR10DVS_CLASSES):
        for n in range(10):
            ev = events_for(100 * c + n, 25, 128, 128)
            path = tmp_path / name / f"cifar10_{name}_{n}.aedat"
            write_aedat2_dvs128(path, ev)
            written[path] = ev
    ds = load_dataset("cifar10dvs", tmp_path)
    assert len(ds.train) == 90 and len(ds.test) == 10
    assert all(s.path.stem.endswith("_9") for s in ds.test)
    for s in ds.test[:3]:
        events, geo = read_sample(s, ds.geometry)
        assert geo == Geometry(128, 128) and same(events, written[s.path])
    (tmp_path / "truck").rename(tmp_path / "lorry")
    with pytest.raises(ConfigError, match="truck"):
        load_dataset("cifar10dvs", tmp_path)


def test_cifar10dvs_aedat4_rerelease(tmp_path):
    from eventclip.io import write_events

    base = tmp_path / "CIFAR10DVS"
    written = {}
    for c, name in enumerate(CIFAR10DVS_CLASSES):
        for n in range(2):
            ev = events_for(c + 20 * n, 25, 128, 128)
            path = base / name / f"cifar10_{name}_{n}.aedat4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_events(path, ev, Geometry(128, 128))
            written[path] = ev
    ds = load_dataset("cifar10dvs", tmp_path)
    assert len(ds.train) == len(ds.test) == 10 and all(s.path.stem.endswith("_1") for s in ds.test)
    events, geo = read_sample(ds.test[4], ds.geometry)
    assert geo == Geometry(128, 128) and same(events, written[ds.test[4].path])


def test_asldvs_mat_files(tmp_path):
    import scipy.io

    written = {}
    for c, letter in enumerate(ASL_LETTERS[:3]):
        for i in range(5):
            ev = events_for(10 * c + i, 30, 240, 180)
            path = tmp_path / letter / f"{letter}_{i + 1:04d}.mat"
            path.parent.mkdir(parents=True, exist_ok=True)
            shuffled = np.random.default_rng(i).permutation(len(ev))
            scipy.io.savemat(path, {"x": ev["x"][shuffled, None].astype(np.float64),
                                    "y": 179 - ev["y"][shuffled, None].astype(np.float64),  # from the bottom
                                    "ts": ev["t"][shuffled, None].astype(np.float64),
                                    "pol": ev["p"][shuffled, None].astype(np.float64)})
            written[path] = ev
    ds = load_dataset("asldvs", tmp_path)
    assert ds.classes == ["a", "b", "c"] and ds.texts[0] == "the sign language letter A"
    assert len(ds.train) == 12 and len(ds.test) == 3
    for s in ds.test:
        events, geo = read_sample(s, ds.geometry)
        assert geo == Geometry(240, 180) and same(events, written[s.path])
    bad = tmp_path / "a" / "a_0099.mat"
    scipy.io.savemat(bad, {"x": np.zeros((2, 1)), "y": np.zeros((2, 1))})
    with pytest.raises(EventFormatError, match="ts") as info:
        read_sample(type(ds.test[0])(bad, 0), None)
    assert info.value.path == str(bad)


def test_dvsgesture_spans_and_official_split(tmp_path, monkeypatch):
    base = tmp_path / "DvsGesture"
    ev = events_for(3, 2000, 128, 128)
    t = ev["t"]
    spans = [(1, int(t[100]), int(t[600])), (11, int(t[700]), int(t[1500]))]
    for name in ("user01_fluorescent", "user24_led"):
        write_aedat31_dvs128(base / f"{name}.aedat", ev)
        (base / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n"
                                                + "".join(f"{c},{a},{b}\n" for c, a, b in spans))
    (base / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (base / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    ds = load_dataset("dvsgesture", tmp_path)
    assert len(ds.classes) == len(DVSGESTURE_CLASSES) == 11
    assert [(s.label, s.t_start_us, s.t_end_us) for s in ds.test] == [(0, spans[0][1], spans[0][2]),
                                                                      (10, spans[1][1], spans[1][2])]
    events, geo = read_sample(ds.test[0], ds.geometry)
    assert geo == Geometry(128, 128) and same(events, ev[100:600])
    import eventclip.datasets.reading

    calls = []
    real = eventclip.datasets.reading.read_events
    monkeypatch.setattr(eventclip.datasets.reading, "read_events", lambda *a, **k: calls.append(a) or real(*a, **k))
    reader = SampleReader(ds.geometry)
    spans = [reader(s)[0] for s in ds.train + ds.test]
    assert len(calls) == 2  # one decode per recording, not per span
    assert same(spans[3], ev[700:1500]) and same(spans[0], ev[100:600])
    (base / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,5,9\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_dataset("dvsgesture", tmp_path)
    (base / "trials_to_test.txt").write_text("user99_missing.aedat\n")
    with pytest.raises(ConfigError, match="user99_missing"):
        load_dataset("dvsgesture", tmp_path)


def write_folder_dataset(root: Path, n_classes: int = 3, per_class: int = 4, geometry=(32, 32)) -> dict:
    """The generic paired layout: classes.json, index.csv, EVT 3.0 recordings and PNG images."""
    from PIL import Image

    from eventclip.io import write_events

    classes = [{"name": f"shape_{c}", "text": f"shape number {c}", "group": "g"} for c in range(n_classes)]
    (root / "classes.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps(classes))
    (root / "meta.json").write_text(json.dumps({"geometry": list(geometry)}))
    rows, written = ["events,image,label,sample"], {}
    for c in range(n_classes):
        for i in range(per_class):
            ev = events_for(10 * c + i, 200, *geometry)
            rel_ev, rel_im = f"events/shape_{c}/{i:03d}.raw", f"images/shape_{c}/{i:03d}.png"
            (root / rel_ev).parent.mkdir(parents=True, exist_ok=True)
            (root / rel_im).parent.mkdir(parents=True, exist_ok=True)
            write_events(root / rel_ev, ev, Geometry(*geometry))
            Image.fromarray(np.full((16, 16, 3), 40 * c, np.uint8)).save(root / rel_im)
            rows.append(f"{rel_ev},{rel_im},shape_{c},{i}")
            written[root / rel_ev] = ev
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return written


def test_folder_dataset_holds_out_the_recorded_files_or_says_it_may_overlap_training(tmp_path):
    from eventclip.datasets.base import split_items
    from eventclip.datasets.folder import load_folder

    written = write_folder_dataset(tmp_path)
    ds = load_dataset("folder", tmp_path)
    assert ds.classes == ["shape_0", "shape_1", "shape_2"] and ds.texts[1] == "shape number 1"
    _, held_out = split_items(load_folder(tmp_path).items, 1, 0)
    assert [s.path for s in ds.test] == [it.events for it in held_out]
    assert "may have been used in training" in ds.notes["split"]
    recorded = sorted(str(p.relative_to(tmp_path)) for p in list(written)[::2])
    exact = load_dataset("folder", tmp_path, held_out_files=recorded)
    assert sorted(str(s.path.relative_to(tmp_path)) for s in exact.test) == recorded
    assert len(exact.train) + len(exact.test) == len(written)
    with pytest.raises(ConfigError, match="not the dataset this model was trained on"):
        load_dataset("folder", tmp_path, held_out_files=[*recorded, "events/shape_9/0.raw"])
    assert all(s.image is not None and s.image.is_file() for s in ds.train + ds.test)
    events, geo = read_sample(ds.test[0], ds.geometry)
    assert geo == Geometry(32, 32) and same(events, written[ds.test[0].path])
    sub = ds.restrict([2, 0], "two classes")
    assert sub.classes == ["shape_2", "shape_0"] and {s.label for s in sub.train} == {0, 1}
    assert all(s.path.parent.name == sub.classes[s.label] for s in sub.train + sub.test)


def test_missing_roots_and_bad_options_are_config_errors(tmp_path):
    for name in ("ncaltech101", "nmnist", "nimagenet", "asldvs", "folder"):
        with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "nope"))):
            load_dataset(name, tmp_path / "nope")
    with pytest.raises(ConfigError, match="unknown"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        EventSlice(window_us=10, n_events=5)
    with pytest.raises(ConfigError, match="n-events"):
        EventSlice(n_events=0)
    ev = events_for(0, 100, 8, 8)
    centred = EventSlice(window_us=500)(ev, 0)
    assert 0 < len(centred) < 100 and centred["t"][-1] - centred["t"][0] < 500
