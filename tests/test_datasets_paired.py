"""N-Caltech101 + Caltech101 and N-ImageNet + ImageNet loaders on tiny fake layouts laid out as distributed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eventclip.datasets.ncaltech101 import load_ncaltech101_pairs
from eventclip.datasets.nimagenet import load_nimagenet_pairs
from eventclip.errors import ConfigError


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def _ncaltech_bin(path, n=10):
    """Orchard et al.'s 40-bit ATIS records: x (8), y (8), p (1) + t (23 bits, µs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = np.zeros((n, 5), np.uint8)
    t = np.arange(n) * 10
    rec[:, 0], rec[:, 1] = np.arange(n) % 240, np.arange(n) % 180
    rec[:, 2] = ((np.arange(n) % 2) << 7) | ((t >> 16) & 0x7F)
    rec[:, 3], rec[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.write_bytes(rec.tobytes())


def test_ncaltech101_pairs_by_class_and_stem(tmp_path):
    ev, im = tmp_path / "Caltech101", tmp_path / "101_ObjectCategories"
    for cls in ("Faces_easy", "cougar_face", "airplanes"):
        for i in (1, 2):
            _ncaltech_bin(ev / cls / f"image_000{i}.bin")
            _img(im / ("Faces" if cls == "Faces_easy" else cls) / f"image_000{i}.jpg")
    ds = load_ncaltech101_pairs(ev, im)
    assert ds.classes == ["Faces_easy", "airplanes", "cougar_face"]
    assert ds.texts == ["face", "airplane", "cougar face"]
    assert len(ds.items) == 6 and (ds.geometry.width, ds.geometry.height) == (240, 180)
    assert all(it.events.stem == it.image.stem for it in ds.items)
    assert ds.items[0].image.parent.name == "Faces"


def test_ncaltech101_missing_image_is_named(tmp_path):
    ev, im = tmp_path / "Caltech101", tmp_path / "101_ObjectCategories"
    _ncaltech_bin(ev / "ant" / "image_0001.bin")
    (im / "ant").mkdir(parents=True)
    with pytest.raises(ConfigError, match="image_0001.bin"):
        load_ncaltech101_pairs(ev, im)
    with pytest.raises(ConfigError, match="does not exist"):
        load_ncaltech101_pairs(tmp_path / "nope", im)


def test_nimagenet_pairs_and_names_from_synset_mapping(tmp_path):
    ev, im = tmp_path / "extracted_train", tmp_path / "train"
    for wnid in ("n01440764", "n02102040"):
        stem = f"{wnid}_10026"
        (ev / wnid).mkdir(parents=True)
        np.savez(ev / wnid / f"{stem}.npz", event_data=np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2"),
                                                                            ("t", "<i8"), ("p", "?")]))
        _img(im / wnid / f"{stem}.JPEG")
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n01440764 tench, Tinca tinca\nn02102040 English springer, English springer spaniel\n")
    ds = load_nimagenet_pairs(ev, im, mapping)
    assert ds.texts == ["tench", "English springer"] and len(ds.items) == 2
    assert load_nimagenet_pairs(ev, im).texts == ["n01440764", "n02102040"]
    mapping.write_text("n01440764\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_nimagenet_pairs(ev, im, mapping)
