"""npy / npz / csv: hypothesis round-trips through our writers, numpy and a plain csv parse as independent
readers of what we write, other producers' layouts, and typed errors for bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io.errors import EventFormatError, GeometryError, TruncatedFileError
from eventclip.io.plain import (
    CsvReader,
    CsvWriter,
    NpyReader,
    NpyWriter,
    NpzReader,
    NpzWriter,
    _sniff_csv,
    _sniff_npy,
    _sniff_npz,
    sidecar_path,
)
from tests._io_helpers import event_streams, same_events

FORMATS = {"npy": (NpyWriter, NpyReader), "npz": (NpzWriter, NpzReader), "csv": (CsvWriter, CsvReader)}
SNIFF = {"npy": _sniff_npy, "npz": _sniff_npz, "csv": _sniff_csv}


def read_all(reader_cls, path, **kwargs):
    with reader_cls(path, **kwargs) as reader:
        blocks = list(reader)
    return (np.concatenate(blocks, dtype=EVENT_DTYPE) if blocks else np.empty(0, EVENT_DTYPE)), reader


def write(fmt, path, events, geometry, split: int | None = None):
    writer_cls, _ = FORMATS[fmt]
    with writer_cls(path, geometry) as writer:
        if split is None:
            writer.write(events)
        else:
            writer.write(events[:split])
            writer.write(events[split:])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=event_streams(max_events=60, max_side=4096, max_gap_bits=40))
def test_hypothesis_round_trip(tmp_path, fmt, stream):
    events, geometry = stream
    path = tmp_path / f"rt.{fmt}"
    write(fmt, path, events, geometry, split=len(events) // 2)
    kwargs = {"block_bytes": 13} if fmt == "csv" else {"block_events": 7}
    back, reader = read_all(FORMATS[fmt][1], path, **kwargs)
    assert reader.geometry == geometry
    assert same_events(events, back)
    assert SNIFF[fmt](path.read_bytes()[:65536], path)


def test_numpy_and_csv_module_read_what_we_write(tmp_path):
    ev = make_events([0, 639, 5], [479, 0, 7], [1, 0, 1], [-3, 1 << 30, (1 << 40) + 7])
    g = Geometry(640, 480)
    for fmt in FORMATS:
        write(fmt, tmp_path / f"a.{fmt}", ev, g)
    assert same_events(np.load(tmp_path / "a.npy"), ev)
    assert json.loads(sidecar_path(tmp_path / "a.npy").read_text()) == {"width": 640, "height": 480}
    with np.load(tmp_path / "a.npz") as npz:
        assert same_events(make_events(npz["x"], npz["y"], npz["p"], npz["t"]), ev)
        assert int(npz["width"]) == 640 and int(npz["height"]) == 480
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0].startswith("#") and "geometry: 640x480" in lines[0] and lines[1] == "x,y,p,t"
    rows = list(csv.DictReader(lines[1:]))
    assert same_events(make_events(*[[int(r[k]) for r in rows] for k in "xypt"]), ev)


def test_other_producers_layouts(tmp_path):
    g = Geometry(50, 40)
    ev = make_events([1, 2, 49], [3, 39, 0], [0, 1, 1], [10, 20, 30])
    arr = np.empty(3, dtype=[("t", "<u8"), ("x", "<i4"), ("y", "<i4"), ("polarity", "?")])
    arr["t"], arr["x"], arr["y"], arr["polarity"] = ev["t"], ev["x"], ev["y"], ev["p"].astype(bool)
    np.save(tmp_path / "other.npy", arr)
    assert same_events(read_all(NpyReader, tmp_path / "other.npy", geometry=g)[0], ev)
    np.savez(tmp_path / "other.npz", events=arr)
    assert same_events(read_all(NpzReader, tmp_path / "other.npz", geometry=g)[0], ev)
    (tmp_path / "other.csv").write_text("# from a script\n# Geometry = 50x40\nx, y, p, t\r\n1,3,0,10\r\n"
                                        "2,39,1,20\r\n49,0,1,30")
    back, reader = read_all(CsvReader, tmp_path / "other.csv")
    assert reader.geometry == g and same_events(back, ev)


def test_missing_geometry_says_how_to_give_it(tmp_path):
    np.save(tmp_path / "a.npy", make_events([1], [1], [1], [1]))
    with pytest.raises(GeometryError, match="a.npy.json"):
        NpyReader(tmp_path / "a.npy")
    np.savez(tmp_path / "a.npz", x=[1], y=[1], p=[1], t=[1])
    with pytest.raises(GeometryError, match="width"):
        NpzReader(tmp_path / "a.npz")
    (tmp_path / "a.csv").write_text("x,y,p,t\n1,1,1,1\n")
    with pytest.raises(GeometryError, match="# geometry: WIDTHxHEIGHT"):
        CsvReader(tmp_path / "a.csv")
    assert same_events(read_all(CsvReader, tmp_path / "a.csv", geometry=Geometry(2, 2))[0],
                       make_events([1], [1], [1], [1]))


def test_npy_errors_name_the_byte(tmp_path):
    g = Geometry(10, 10)
    path = tmp_path / "e.npy"
    write("npy", path, make_events([1, 2, 3], [1, 2, 3], [0, 1, 0], [1, 2, 3]), g)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(TruncatedFileError) as info:
        read_all(NpyReader, path)
    assert info.value.offset == len(data) - 32
    path.write_bytes(data + b"xx")
    with pytest.raises(EventFormatError, match="unexpected bytes"):
        read_all(NpyReader, path)
    path.write_bytes(b"")
    with pytest.raises(EventFormatError):
        read_all(NpyReader, path)
    path.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage")
    with pytest.raises(EventFormatError, match="header"):
        read_all(NpyReader, path)
    np.save(path, np.zeros((3, 4)))
    with pytest.raises(EventFormatError, match="structured"):
        read_all(NpyReader, path)
    bad = make_events([1, 10], [1, 1], [0, 1], [1, 2])
    np.save(path, bad)
    with pytest.raises(GeometryError) as info:
        read_all(NpyReader, path, geometry=g)
    assert info.value.offset == path.stat().st_size - 16
    np.save(path, make_events([1, 1], [1, 1], [0, 2], [1, 2]))
    with pytest.raises(EventFormatError, match="polarity"):
        read_all(NpyReader, path, geometry=g)
    np.save(path, make_events([1, 1], [1, 1], [0, 1], [5, 2]))
    with pytest.raises(EventFormatError, match="back in time") as info:
        read_all(NpyReader, path, geometry=g)
    assert info.value.offset == path.stat().st_size - 16


def test_csv_errors_name_line_and_byte(tmp_path):
    path = tmp_path / "e.csv"
    head = "# geometry: 10x10\nx,y,p,t\n"
    path.write_text(head + "1,1,0,5\n2,2,1,x\n")
    with pytest.raises(EventFormatError, match="line 4") as info:
        read_all(CsvReader, path)
    assert info.value.offset == len(head) + 8
    path.write_text(head + "1,1,0,5\n2,2,1\n")
    with pytest.raises(EventFormatError, match="line 4"):
        read_all(CsvReader, path)
    path.write_text(head + "1,1,0,5\n20,2,1,6\n")
    with pytest.raises(GeometryError) as info:
        read_all(CsvReader, path)
    assert info.value.offset == len(head) + 8
    path.write_text(head + "1,1,0,5\n2,2,1,4\n")
    with pytest.raises(EventFormatError, match="back in time"):
        read_all(CsvReader, path)
    path.write_text(head + "-1,1,0,5\n")
    with pytest.raises(EventFormatError, match="pixel"):
        read_all(CsvReader, path)
    path.write_text("# geometry: 10x10\nt,x,y,p\n5,1,1,0\n")
    with pytest.raises(EventFormatError, match="header"):
        CsvReader(path)
    path.write_text("")
    with pytest.raises(EventFormatError):
        CsvReader(path)


def test_csv_cut_inside_its_last_line_is_truncated(tmp_path):
    """A recording cut mid-line ends in a line with no newline that does not parse: that is a truncated
    file (every complete line before it is handed over), while the same bad line with its newline is
    just a bad line."""
    path = tmp_path / "cut.csv"
    head = "# geometry: 10x10\nx,y,p,t\n"
    path.write_text(head + "1,1,0,5\n2,2,1,6\n3,3,")
    got = []
    with pytest.raises(TruncatedFileError, match="line 5") as info, CsvReader(path, block_bytes=8) as reader:
        got.extend(reader)
    assert info.value.offset == len(head) + 16
    assert [int(e["t"]) for e in np.concatenate(got)] == [5, 6]
    path.write_text(head + "1,1,0,5\n2,2,1,6\n3,3,\n")
    with pytest.raises(EventFormatError, match="line 5") as info:
        read_all(CsvReader, path)
    assert not isinstance(info.value, TruncatedFileError)


def test_npz_errors(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(EventFormatError, match="npz"):
        NpzReader(path)
    np.savez(path, x=[1, 2], y=[1], p=[0, 1], t=[1, 2], width=10, height=10)
    with pytest.raises(EventFormatError, match="equally long"):
        NpzReader(path)
    np.savez(path, x=[1.5], y=[1], p=[0], t=[1], width=10, height=10)
    with pytest.raises(EventFormatError, match="integers"):
        read_all(NpzReader, path)


def test_writers_refuse_bad_events(tmp_path):
    for fmt, (writer_cls, _) in FORMATS.items():
        with writer_cls(tmp_path / f"w.{fmt}", Geometry(4, 4)) as writer:
            with pytest.raises(ValueError, match="outside"):
                writer.write(make_events([4], [0], [1], [0]))
            writer.write(make_events([0], [0], [1], [10]))
            with pytest.raises(ValueError, match="back in time"):
                writer.write(make_events([0], [0], [1], [9]))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_streams_yield_the_valid_events_before_the_first_bad_one(tmp_path, fmt):
    """Event 60 of 100 steps back in time and event 80 lies outside the sensor: the stream hands
    over events 0-59 (the first problem in file order wins), then raises."""
    g = Geometry(10, 10)
    ev = make_events(np.arange(100) % 10, np.arange(100) // 10, np.arange(100) % 2, np.arange(100) * 10)
    path = tmp_path / f"bad.{fmt}"
    write(fmt, path, ev, g)
    if fmt == "npy":
        arr = np.load(path, mmap_mode="r+")
        arr["t"][60], arr["x"][80] = 5, 12
        arr.flush()
        del arr
    elif fmt == "npz":
        with np.load(path) as z:
            members = {k: z[k].copy() for k in z.files}
        members["t"][60], members["x"][80] = 5, 12
        np.savez(path, **members)
    else:
        lines = path.read_text().splitlines()
        header = next(k for k, line in enumerate(lines) if line[:1].isdigit())  # comment and column lines
        for k, field, value in ((60, 3, "5"), (80, 0, "12")):
            cells = lines[header + k].split(",")
            cells[field] = value
            lines[header + k] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    got = []
    with pytest.raises(EventFormatError, match="back in time"), FORMATS[fmt][1](path) as reader:
        for block in reader:
            got.append(block.copy())
    assert same_events(np.concatenate(got), ev[:60])
