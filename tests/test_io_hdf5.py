"""Prophesee HDF5 (/CD/events): reading, streaming blocks, geometry attributes, ECF detection, bad data."""

from __future__ import annotations

import numpy as np
import pytest

from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io import (
    EventFormatError,
    GeometryError,
    detect_format,
    open_events,
    read_events,
)
from eventclip.io import hdf5 as hdf5_mod
from tests._io_helpers import environment_without, read_hdf5_in_child, same_events

h5py = pytest.importorskip("h5py")

CD_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")])
"""A packed 14-byte layout: read as stored, then converted by field name."""
METAVISION_DTYPE = np.dtype({"names": ["x", "y", "p", "t"], "formats": ["<u2", "<u2", "<i2", "<i8"],
                             "offsets": [0, 2, 4, 8], "itemsize": 16})
"""Metavision's EventCD layout (= EVENT_DTYPE): read by HDF5 straight into our arrays."""


def _write(path, events, attrs=None, filter_id=None, triggers=None, dtype=CD_DTYPE):
    with h5py.File(path, "w") as f:
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        g = f.create_group("CD")
        if filter_id is None:
            g.create_dataset("events", data=events.astype(dtype), chunks=True, maxshape=(None,))
        else:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((64,))
            dcpl.set_filter(filter_id, h5py.h5z.FLAG_OPTIONAL, ())
            space = h5py.h5s.create_simple((len(events),), (h5py.h5s.UNLIMITED,))
            ds = h5py.Dataset(h5py.h5d.create(g.id, b"events", h5py.h5t.py_create(CD_DTYPE), space, dcpl=dcpl))
            ds[:] = events.astype(CD_DTYPE)
        if triggers is not None:
            f.create_group("EXT_TRIGGER").create_dataset("events", data=triggers)


def _events(n, w=1280, h=720, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(10**9, 10**9 + 10**7, n)))


@pytest.mark.parametrize("dtype", [CD_DTYPE, METAVISION_DTYPE], ids=["packed", "metavision"])
def test_hdf5_read_and_stream_in_blocks(tmp_path, monkeypatch, dtype):
    ev = _events(5000)
    path = tmp_path / "rec.hdf5"
    trig = np.array([(5, 1, 100)], dtype=[("p", "<i2"), ("id", "<i2"), ("t", "<i8")])
    _write(path, ev, {"geometry": "1280x720", "format": "EVT3"}, triggers=trig, dtype=dtype)
    assert detect_format(path).name == "hdf5"
    monkeypatch.setattr(hdf5_mod, "BLOCK_EVENTS", 777)
    with open_events(path, n_events=1000) as stream:
        assert stream.geometry == Geometry(1280, 720)
        chunks = [c.events for c in stream]
        assert stream.reader.triggers[["t", "id", "p"]].tolist() == [(100, 1, 5)]
    assert [len(c) for c in chunks] == [1000] * 5
    assert same_events(np.concatenate(chunks), ev)


def test_hdf5_geometry_sources(tmp_path):
    ev = _events(10, 300, 200)
    p1 = tmp_path / "a.h5"
    _write(p1, ev, {"width": 320, "height": 240})
    assert read_events(p1).geometry == Geometry(320, 240)
    p2 = tmp_path / "b.h5"
    _write(p2, ev, {"plugin_name": "hal_plugin_gen3_fx3"})
    assert read_events(p2).geometry == Geometry(640, 480)
    p3 = tmp_path / "c.h5"
    _write(p3, ev)
    with pytest.raises(GeometryError, match="--geometry 1280x720"):
        read_events(p3)
    assert read_events(p3, geometry=(300, 200)).geometry == Geometry(300, 200)


def test_hdf5_ecf_without_plugin_is_detected(tmp_path):
    """A dataset whose pipeline names filter 36559 (ECF) cannot be read without Prophesee's codec.

    No registry package ships ECF (hdf5plugin's filter list is checked here), so a process without
    the SDK's plugin on HDF5_PLUGIN_PATH must refuse with a message saying what to set. Read in a
    child process without HDF5_PLUGIN_PATH, as the SDK's environment may be active in this one
    (files the SDK writes with ECF are read in tests/test_sdk_hdf5.py).
    """
    hdf5plugin = pytest.importorskip("hdf5plugin")
    assert hdf5_mod.ECF_FILTER_ID not in hdf5plugin.FILTERS.values()
    path = tmp_path / "ecf.hdf5"
    _write(path, _events(100), {"geometry": "1280x720"}, filter_id=hdf5_mod.ECF_FILTER_ID)
    available, message = read_hdf5_in_child(path, environment_without("HDF5_PLUGIN_PATH"))
    assert available == "False"
    assert "ECF" in message and str(path) in message
    assert "HDF5_PLUGIN_PATH is not set" in message and "lib/hdf5/plugin" in message and "hdf5_ecf" in message


@pytest.mark.parametrize("dtype", [CD_DTYPE, METAVISION_DTYPE], ids=["packed", "metavision"])
def test_hdf5_bad_data(tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(hdf5_mod, "BLOCK_EVENTS", 16)  # errors in a later block name the file's event index
    ev = _events(50, 100, 100)
    bad_t = ev.copy()
    bad_t["t"][20] = bad_t["t"][19] - 1
    p = tmp_path / "t.h5"
    _write(p, bad_t, {"geometry": "100x100"}, dtype=dtype)
    with pytest.raises(EventFormatError, match="event 20 "):
        read_events(p)
    outside = ev.copy()
    outside["x"][7] = 100
    p = tmp_path / "x.h5"
    _write(p, outside, {"geometry": "100x100"}, dtype=dtype)
    with pytest.raises(GeometryError, match="event 7 "):
        read_events(p)
    pol = ev.copy()
    pol["p"][33] = 2
    p = tmp_path / "p.h5"
    _write(p, pol, {"geometry": "100x100"}, dtype=dtype)
    with pytest.raises(EventFormatError, match="event 33 .*polarity"):
        list(open_events(p))
    p = tmp_path / "nocd.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("other", data=np.arange(3))
    with pytest.raises(EventFormatError, match="CD/events"):
        read_events(p)
    p = tmp_path / "garbage.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(EventFormatError):
        read_events(p)
    empty = tmp_path / "empty.h5"
    _write(empty, np.empty(0, EVENT_DTYPE), {"geometry": "10x10"})
    assert len(read_events(empty)) == 0


def test_hdf5_kernel_matches_reference():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from eventclip.io import _hdf5_kernels as K

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 70), st.integers(0, 50), st.integers(-1, 2), st.integers(0, 40)),
                    max_size=30), st.integers(-5, 5))
    def check(rows, last_t):
        x, y, p, t = (np.array([r[k] for r in rows], dtype=np.int64) for k in range(4))
        (code, at), ref = K.reference_convert_block(x, y, p, t, 64, 48, last_t)
        out = np.zeros(len(rows), dtype=EVENT_DTYPE)
        got = K.convert_block(x.astype(np.uint16), y.astype(np.uint16), p.astype(np.int16), t,
                              out.view(np.int64).reshape(-1, 2), 64, 48, last_t)
        assert got == (code, at)
        if ref is not None:
            assert same_events(out, ref)
        direct = np.zeros(len(rows), dtype=EVENT_DTYPE)  # as HDF5 leaves it: fields set, pad bytes not
        direct["x"], direct["y"], direct["p"], direct["t"] = x, y, p, t
        flat = direct.view(np.int64).reshape(-1, 2)
        flat[:, 0] |= np.int64(0x7A5B) << 48
        assert K.check_block(flat, 64, 48, last_t) == (code, at)
        if ref is not None:
            assert same_events(direct, ref) and not (flat[:, 0] >> 48).any()

    check()


@pytest.mark.parametrize("dtype", [CD_DTYPE, METAVISION_DTYPE], ids=["packed", "metavision"])
def test_hdf5_stream_yields_the_valid_events_before_a_bad_one(tmp_path, monkeypatch, dtype):
    monkeypatch.setattr(hdf5_mod, "BLOCK_EVENTS", 1000)
    ev = _events(5000, 100, 100)
    bad = ev.copy()
    bad["x"][2345] = 100  # outside 100x100, in the middle of the third block
    path = tmp_path / "bad.h5"
    _write(path, bad, {"geometry": "100x100"}, dtype=dtype)
    got = []
    with pytest.raises(GeometryError, match="event 2345 "), open_events(path) as stream:
        for chunk in stream:
            got.append(chunk.events.copy())
    assert same_events(np.concatenate(got), ev[:2345])
