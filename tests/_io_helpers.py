"""Hypothesis strategies and small helpers shared by the io tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from eventclip.events import EVENT_DTYPE, Geometry, make_events


@st.composite
def event_streams(draw, max_events: int = 60, max_side: int = 2048, max_gap_bits: int = 36, start_bits: int = 40):
    """(events, geometry): time-ordered events inside a random geometry, with corners and long gaps.

    Gaps are drawn from a mix of 0 (same timestamp), small, and huge (up to 2^max_gap_bits µs,
    crossing the EVT 3.0 24-bit and EVT 2.0 34-bit wraps); the first time need not be 0.
    """
    width = draw(st.integers(1, max_side))
    height = draw(st.integers(1, max_side))
    n = draw(st.integers(0, max_events))
    t0 = draw(st.one_of(st.just(0), st.integers(0, 1 << start_bits)))
    gaps = draw(st.lists(st.one_of(st.just(0), st.integers(0, 100), st.integers(0, 1 << max_gap_bits)),
                         min_size=n, max_size=n))
    corner_x = st.sampled_from([0, width - 1])
    corner_y = st.sampled_from([0, height - 1])
    xs = draw(st.lists(st.one_of(st.integers(0, width - 1), corner_x), min_size=n, max_size=n))
    ys = draw(st.lists(st.one_of(st.integers(0, height - 1), corner_y), min_size=n, max_size=n))
    ps = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    t = t0 + np.cumsum(np.array(gaps, dtype=np.int64)) if n else np.empty(0, np.int64)
    return make_events(np.array(xs, dtype=np.int64), ys, ps, t), Geometry(width, height)


def rows_sorted(events: np.ndarray) -> np.ndarray:
    """Events sorted by (t, y, x, p): for comparing decoders that may reorder events sharing a time."""
    return np.sort(events.astype(EVENT_DTYPE), order=["t", "y", "x", "p"])


def same_events(a: np.ndarray, b: np.ndarray) -> bool:
    """Field-by-field equality (x, y, p, t) of two event arrays, ignoring padding bytes."""
    return len(a) == len(b) and all(np.array_equal(a[f].astype(np.int64), b[f].astype(np.int64)) for f in "xypt")


@st.composite
def row_runs(draw, max_runs: int = 24, max_side: int = 2048, max_gap_bits: int = 26):
    """(events, geometry) made of runs an EVT 3.0 writer packs into vectors: events sharing a time, row and
    polarity with increasing columns within 40 pixels, often at the right edge of the geometry or in
    geometries narrower than one 32-column group. Runs often share a time (so vector bases continue
    or restart) and otherwise follow gaps of up to 2^max_gap_bits µs (crossing EVT 3.0 wraps)."""
    width = draw(st.one_of(st.integers(1, 40), st.integers(1, max_side)))
    height = draw(st.integers(1, max_side))
    t = draw(st.integers(0, 1 << max_gap_bits))
    parts = []
    for _ in range(draw(st.integers(0, max_runs))):
        t += draw(st.one_of(st.just(0), st.integers(0, 100), st.integers(0, 1 << max_gap_bits)))
        y = draw(st.integers(0, height - 1))
        base = draw(st.one_of(st.integers(0, width - 1), st.just(max(0, width - 32)), st.just(max(0, width - 40))))
        xs = sorted(x for x in {base + o for o in draw(st.sets(st.integers(0, 39), min_size=1))} if x < width)
        n = len(xs)
        parts.append(make_events(np.array(xs, dtype=np.int64), [y] * n, [draw(st.integers(0, 1))] * n, [t] * n))
    events = np.concatenate(parts) if parts else make_events([], [], [], [])
    return events, Geometry(width, height)


def environment_without(name: str) -> dict[str, str]:
    """This process's environment less the variable ``name``."""
    return {k: v for k, v in os.environ.items() if k != name}


def read_hdf5_in_child(path: Path, env: dict[str, str]) -> tuple[str, str]:
    """Read an HDF5 file in a child process with environment ``env``: returns (whether HDF5 there has
    the ECF filter, "True" or "False"; the reader's UnsupportedFeatureError message, "" if it read).

    Why a child: HDF5 looks for plugins once per process, and the SDK's may already be loaded here."""
    code = ("import sys, h5py\n"
            "from eventclip.io import UnsupportedFeatureError, read_events\n"
            "print(h5py.h5z.filter_avail(36559))\n"
            "try:\n    read_events(sys.argv[1])\nexcept UnsupportedFeatureError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    available, _, message = done.stdout.partition("\n")
    return available, message.strip()
