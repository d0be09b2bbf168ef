"""Fuzz the AEDAT 4.0 decoder with mutated copies of the two real recordings (cut to their first packets)
and of a file our writer produced. See tests/_fuzz_others.py for the invariant."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from eventclip.events import Geometry, make_events
from eventclip.io.aedat4 import MAGIC, Aedat4Reader, Aedat4Writer
from tests._fuzz_others import CI_CASES, SEED, SLOW_CASES, run_fuzz
from tests.conftest import recording

REAL = ["inivation_davis346_events_frames_imu.aedat4", "inivation_dvxplorer_320x240.aedat4"]


def _prefix(data: bytes, packets: int) -> bytes:
    """The header and the first ``packets`` packets of an AEDAT4 file, with dataTablePosition set to -1
    (as in an interrupted recording) so that the shorter file is valid."""
    start = len(MAGIC) + 4
    root = start + struct.unpack_from("<I", data, start)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    table_field = root + struct.unpack_from("<H", data, vtable + 6)[0]  # IOHeader field 1: dataTablePosition
    out = bytearray(data)
    struct.pack_into("<q", out, table_field, -1)
    pos = start + struct.unpack_from("<I", data, len(MAGIC))[0]
    for _ in range(packets):
        pos += 8 + struct.unpack_from("<i", data, pos + 4)[0]
    return bytes(out[:pos])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    out = [_prefix(recording(name).read_bytes(), 6) for name in REAL]
    path = tmp_path_factory.mktemp("aedat4") / "ours.aedat4"
    rng = np.random.default_rng(1)
    ev = make_events(rng.integers(0, 40, 300), rng.integers(0, 30, 300), rng.integers(0, 2, 300),
                     np.cumsum(rng.integers(0, 50, 300)))
    with Aedat4Writer(path, Geometry(40, 30), packet_events=64) as w:
        w.write(ev)
    out.append(path.read_bytes())
    return out


def test_fuzz_aedat4_ci(tmp_path, seeds):
    counts = run_fuzz(tmp_path, Aedat4Reader, seeds, CI_CASES, ".aedat4")
    assert counts["ok"] > 0 and counts["error"] > 0, counts


@pytest.mark.slow
def test_fuzz_aedat4_long(tmp_path, seeds):
    counts = run_fuzz(tmp_path, Aedat4Reader, seeds, SLOW_CASES, ".aedat4", seed=SEED + 1)
    assert counts["ok"] > 0 and counts["error"] > 0, counts
