"""The public io API: detection, chunking by count and by time, read/write, and the info/convert commands."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventclip.cli import main
from eventclip.events import EVENT_DTYPE, Geometry, make_events
from eventclip.io import (
    FORMATS,
    EventFormatError,
    UnknownFormatError,
    detect_format,
    open_events,
    open_writer,
    read_events,
    write_events,
)
from eventclip.io.chunking import chunk_by_count, chunk_by_time
from tests._io_helpers import same_events
from tests.conftest import recording, run_python

EVT2 = "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"


def test_my_formats_are_registered():
    for name in ("evt2", "evt21", "evt3", "dat", "hdf5"):
        assert FORMATS[name].name == name
    assert FORMATS["evt3"].writer is not None and FORMATS["evt21"].writer is None


def test_content_wins_over_extension(tmp_path):
    src = recording(EVT2)
    renamed = tmp_path / "looks_like.dat"
    renamed.write_bytes(src.read_bytes())
    assert detect_format(renamed).name == "evt2"
    unknown = tmp_path / "mystery.xyz"
    unknown.write_bytes(b"\x01\x02garbage")
    with pytest.raises(UnknownFormatError) as info:
        detect_format(unknown)
    assert "mystery.xyz" in str(info.value) and "evt3" in str(info.value)
    with pytest.raises(UnknownFormatError, match="known formats"):
        read_events(src, format="no-such-format")


def test_count_chunks_cover_the_file_exactly():
    path = recording(EVT2)
    whole = read_events(path).events
    with open_events(path, n_events=100_000) as stream:
        assert stream.format == "evt2" and stream.geometry == Geometry(640, 480)
        assert stream.metadata["header"]["plugin_name"] == "hal_plugin_gen3_fx3"
        sizes, parts = [], []
        for c in stream:
            sizes.append(len(c))
            parts.append(c.events)
    assert sizes == [100_000] * 5 + [len(whole) - 500_000]
    assert same_events(np.concatenate(parts), whole)


def test_time_chunks_are_aligned_half_open_spans():
    path = recording(EVT2)
    whole = read_events(path).events
    dt = 7_000
    t0 = int(whole["t"][0]) // dt * dt
    with open_events(path, delta_t_us=dt) as stream:
        chunks = list(stream)
    for k, c in enumerate(chunks):
        assert c.meta["t_start_us"] == t0 + k * dt and c.t_end_us == t0 + (k + 1) * dt
        assert np.all((c.events["t"] >= t0 + k * dt) & (c.events["t"] < c.t_end_us))
    assert same_events(np.concatenate([c.events for c in chunks]), whole)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=40), st.integers(1, 30), st.integers(1, 20), st.integers(0, 10**6))
def test_time_chunking_any_blocking(gaps, dt, block, t0):
    """Re-slicing is independent of how the reader blocks the stream; empty spans are yielded too."""
    t = t0 + np.cumsum(np.array(gaps, dtype=np.int64))
    ev = make_events(np.zeros(len(t), np.int64), np.zeros(len(t)), np.ones(len(t)), t)
    blocks = [ev[i:i + block] for i in range(0, len(ev), block)]
    geo = Geometry(1, 1)
    chunks = list(chunk_by_time(iter(blocks), geo, dt))
    if not len(ev):
        assert chunks == []
        return
    start = int(t[0]) // dt * dt
    assert [c.meta["t_start_us"] for c in chunks] == list(range(start, start + dt * len(chunks), dt))
    assert chunks[-1].t_end_us > t[-1]
    assert same_events(np.concatenate([c.events for c in chunks]), ev)
    counted = list(chunk_by_count(iter(blocks), geo, block + 1))
    assert (all(len(c) == block + 1 for c in counted[:-1])
            and same_events(np.concatenate([c.events for c in counted]), ev))


def test_bad_chunk_arguments():
    path = recording(EVT2)
    with pytest.raises(ValueError, match="not both"):
        open_events(path, n_events=10, delta_t_us=10)
    with pytest.raises(ValueError, match="positive"):
        open_events(path, delta_t_us=0)
    stream = open_events(path)
    list(stream)
    with pytest.raises(RuntimeError, match="once"):
        list(stream)
    stream.close()


@pytest.mark.parametrize("fmt,suffix", [("evt3", ".raw"), ("evt2", ".raw"), ("dat", ".dat")])
def test_write_then_read_api(tmp_path, fmt, suffix):
    ev = make_events([0, 3, 9], [1, 1, 4], [1, 0, 1], [10, 10, 99])
    path = tmp_path / f"x{suffix}"
    write_events(path, ev, (10, 5), format=fmt)
    back = read_events(path)
    assert back.meta["format"] == fmt and back.geometry == Geometry(10, 5) and same_events(back.events, ev)
    with open_writer(tmp_path / f"empty{suffix}", Geometry(4, 4), format=fmt) as w:
        w.write(np.empty(0, EVENT_DTYPE))
    empty = read_events(tmp_path / f"empty{suffix}")
    assert len(empty) == 0 and empty.geometry == Geometry(4, 4)


def test_raw_extension_writes_evt3_and_unknown_extension_is_refused(tmp_path):
    write_events(tmp_path / "a.raw", make_events([1], [1], [1], [5]), (4, 4))
    assert detect_format(tmp_path / "a.raw").name == "evt3"
    with pytest.raises(UnknownFormatError, match="extension"):
        write_events(tmp_path / "a.unknown", make_events([1], [1], [1], [5]), (4, 4))
    with pytest.raises(UnknownFormatError, match="cannot be written"):
        write_events(tmp_path / "a.raw", make_events([1], [1], [1], [5]), (4, 4), format="evt21")


def test_info_json_and_text(capsys):
    path = recording(EVT2)
    whole = read_events(path).events
    assert main(["info", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("format", "events", "width", "height", "t_first", "t_last", "on", "off")} == {
        "format": "evt2", "events": len(whole), "width": 640, "height": 480,
        "t_first": int(whole["t"][0]), "t_last": int(whole["t"][-1]),
        "on": int((whole["p"] == 1).sum()), "off": int((whole["p"] == 0).sum())}
    assert main(["info", str(path)]) == 0
    assert "Mev/s" in capsys.readouterr().out


def test_info_needs_geometry_when_file_has_none(tmp_path, capsys):
    path = tmp_path / "nogeo.raw"
    path.write_bytes(b"% evt 3.0\n" + np.array([0x8001, 0x6005, 0x0002, 0x2003], dtype="<u2").tobytes())
    assert main(["info", str(path)]) == 1
    assert "--geometry" in capsys.readouterr().err
    assert main(["info", "--json", "--geometry", "8x8", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 1
    assert main(["info", "--width", "8", "--height", "8", str(path)]) == 2  # the retired flags say what replaced them
    assert "replaced by --geometry" in capsys.readouterr().err
    assert main(["convert", str(path), str(tmp_path / "out.npy"), "--geometry", "0x8"]) == 2


def test_convert_streams_and_cleans_up(tmp_path, capsys):
    src = recording(EVT2)
    out = tmp_path / "out.dat"
    assert main(["convert", str(src), str(out)]) == 0
    assert same_events(read_events(out).events, read_events(src).events)
    out3 = tmp_path / "out.raw"
    assert main(["convert", str(out), str(out3), "--format", "evt3"]) == 0
    assert same_events(read_events(out3).events, read_events(src).events)
    bad = tmp_path / "cut.raw"
    bad.write_bytes(src.read_bytes()[:-1])
    target = tmp_path / "partial.raw"
    assert main(["convert", str(bad), str(target)]) == 1
    assert not target.exists()
    assert main(["convert", str(src), str(src)]) == 1
    with pytest.raises(EventFormatError):
        from eventclip.io.convert import convert

        convert(src, src)


def test_read_events_returns_the_metavision_layout(tmp_path):
    """Several decoded blocks joined must keep EVENT_DTYPE (16 bytes), not numpy's packed 14-byte dtype."""
    from eventclip.events import EVENT_DTYPE, Geometry, make_events
    from eventclip.io import read_events, write_events

    n = 300_000
    ev = make_events(np.arange(n) % 640, np.arange(n) % 480, np.arange(n) % 2, np.arange(n) * 3)
    write_events(tmp_path / "a.raw", ev, Geometry(640, 480), format="evt3")
    got = read_events(tmp_path / "a.raw").events
    assert got.dtype == EVENT_DTYPE and got.dtype.itemsize == 16
    np.testing.assert_array_equal(got, ev)


# ---- paths that are not event files (issue 18, items 10 and 13) ------------------------------------


@pytest.mark.parametrize("call", [detect_format, open_events, read_events])
def test_missing_file_and_directory_are_os_errors(tmp_path, call):
    """``except OSError`` (and FileNotFoundError / IsADirectoryError) catch them; they still name the path."""
    missing = tmp_path / "nope.raw"
    with pytest.raises(FileNotFoundError) as info:
        call(missing)
    assert info.value.errno == errno.ENOENT and info.value.filename == str(missing)
    assert str(missing) in str(info.value) and "check the path" in str(info.value)
    with pytest.raises(IsADirectoryError) as info:
        call(tmp_path)
    assert info.value.errno == errno.EISDIR and str(tmp_path) in str(info.value)


def test_reader_classes_refuse_missing_files_with_os_errors(tmp_path):
    for spec in {s.name: s for s in FORMATS.values()}.values():
        with pytest.raises(FileNotFoundError):
            spec.reader(tmp_path / f"nope.{spec.name}")


def test_fifo_is_refused_instead_of_blocking(tmp_path):
    """Opening a FIFO for reading waits for a writer forever; every entry point must refuse it first."""
    fifo = tmp_path / "f.raw"
    os.mkfifo(fifo)
    code = ("import sys\nfrom eventclip.cli import main\nfrom eventclip.io import open_events\n"
            f"try:\n    open_events({str(fifo)!r})\nexcept OSError as exc:\n    print('refused:', exc)\n"
            f"sys.exit(main(['info', {str(fifo)!r}]))\n")
    done = run_python(code, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "refused:" in done.stdout and "FIFO" in done.stdout and "regular file" in done.stdout
    assert str(fifo) in done.stderr and "FIFO" in done.stderr
