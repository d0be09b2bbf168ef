"""Dataset sample files: N-MNIST / N-Caltech101 ``.bin`` and N-ImageNet ``.npz`` (read only).

**nmnist_bin** (Orchard et al. 2015; ATIS sensor). Headerless 5-byte records, 40 bits big-endian:
x (8), y (8), polarity (1, 1 = ON), timestamp (23, µs). A record with y == 240 is a timestamp
overflow marker, not an event: every later timestamp gains 2**13 µs. That constant is what the
dataset authors' own reader (gorchard/event-Python ``eventvision.py``) and tonic's
``read_mnist_file`` use, so we use it too for identical results; the published samples never
reach 2**23 µs, so no real file contains a marker. The file carries no geometry: a caller's
geometry wins; otherwise 34x34 (N-MNIST) when every event fits, else the ATIS sensor 304x240
(N-Caltech101 crops fit in it). Samples are small (tens of KB), so the reader decodes the whole
file and yields one block.

**nimagenet_npz** (Kim et al. 2021, github.com/82magnolia/n_imagenet). Either a structured
``event_data`` array with fields ``x``, ``y``, ``t``, ``p`` (the released, compressed layout) or
separate ``x_pos``, ``y_pos``, ``timestamp``, ``polarity`` arrays (the uncompressed layout the
authors' loader also accepts). Timestamps are integer microseconds: the authors' loader divides
them by ``TIME_SCALE = 1e6`` to get seconds. Polarity is bool or 0/1 (-1 is mapped to 0).
Geometry defaults to 640x480, the Prophesee Gen3 sensor the dataset was recorded with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.io.base import EventReader, FormatSpec, PathLike, register_format
from eventclip.io.errors import EventFormatError, TruncatedFileError
from eventclip.io.plain import NPZ_ERRORS, checked_blocks, validate_block

NMNIST_RECORD = 5
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13
NMNIST_GEOMETRY = Geometry(34, 34)
ATIS_GEOMETRY = Geometry(304, 240)
NIMAGENET_GEOMETRY = Geometry(640, 480)


def decode_nmnist(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode N-MNIST bytes (length a multiple of 5) -> (events, record index of each event).

    Overflow markers (y == 240) add 2**13 µs to every later timestamp and are not events.
    """
    rec = raw.reshape(-1, NMNIST_RECORD).astype(np.int64)
    x, y = rec[:, 0], rec[:, 1]
    p = rec[:, 2] >> 7
    t = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    marker = y == NMNIST_OVERFLOW_Y
    t = t + np.cumsum(marker) * NMNIST_OVERFLOW_US
    keep = np.flatnonzero(~marker)
    events = np.empty(len(keep), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"], events["t"] = x[keep], y[keep], p[keep], t[keep]
    return events, keep


class NmnistReader(EventReader):
    """Reads one N-MNIST / N-Caltech101 ``.bin`` sample (see the module docstring for conventions)."""

    format_name = "nmnist_bin"

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        raw = np.fromfile(self.path, dtype=np.uint8)
        path = self.path
        if len(raw) == 0:
            raise EventFormatError("file is empty (an N-MNIST sample holds at least one 5-byte event)", path, 0)
        whole = len(raw) - len(raw) % NMNIST_RECORD
        if whole != len(raw):
            raise TruncatedFileError(
                f"file size {len(raw)} is not a multiple of the 5-byte record; the last record is cut", path, whole
            )
        events, index = decode_nmnist(raw)
        self.metadata = {"overflow_markers": int(len(raw) // NMNIST_RECORD - len(events))}
        if self.geometry is None:
            fits = len(events) == 0 or (events["x"].max() < 34 and events["y"].max() < 34)
            self.geometry = NMNIST_GEOMETRY if fits else ATIS_GEOMETRY
            self.metadata["geometry_source"] = "N-MNIST 34x34" if fits else "ATIS sensor 304x240"
        offset_of = lambda i: int(index[i]) * NMNIST_RECORD  # noqa: E731
        validate_block(events, self.geometry, np.iinfo(np.int64).min, path, offset_of)
        self._events = events

    def __iter__(self) -> Iterator[np.ndarray]:
        if len(self._events):
            yield self._events


def _sniff_nmnist(head: bytes, path: Path) -> bool:
    """Headerless format: only a ``.bin`` name whose first records decode as plausible ATIS events."""
    if path.suffix.lower() != ".bin" or len(head) < NMNIST_RECORD:
        return False
    try:
        size = os.stat(path).st_size
    except OSError:
        return False
    if size % NMNIST_RECORD:
        return False
    rec = np.frombuffer(head[: len(head) - len(head) % NMNIST_RECORD], dtype=np.uint8).reshape(-1, 5)
    return bool((rec[:, 0] < 304).all() and ((rec[:, 1] < 240) | (rec[:, 1] == NMNIST_OVERFLOW_Y)).all())


def _sniff_nimagenet(head: bytes, path: Path) -> bool:
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return False
    name_len = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + name_len] in (b"event_data.npy", b"x_pos.npy", b"y_pos.npy", b"timestamp.npy",
                                        b"polarity.npy")


class NImageNetReader(EventReader):
    """Reads one N-ImageNet ``.npz`` sample (either layout) in blocks of ``block_events``."""

    format_name = "nimagenet_npz"

    def __init__(self, path: PathLike, geometry: Geometry | None = None, *, block_events: int = 1 << 20) -> None:
        super().__init__(path, geometry)
        self.block_events = block_events
        path = self.path
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = set(npz.files)
                if "event_data" in keys:
                    ev = npz["event_data"]
                    names = set(ev.dtype.names or ())
                    if ev.ndim != 1 or not {"x", "y", "t", "p"} <= names:
                        raise EventFormatError(
                            f"'event_data' has dtype {ev.dtype}; N-ImageNet stores fields x, y, t, p", path, 0
                        )
                    cols = {"x": ev["x"], "y": ev["y"], "t": ev["t"], "p": ev["p"]}
                    self.metadata = {"layout": "event_data"}
                elif {"x_pos", "y_pos", "timestamp", "polarity"} <= keys:
                    cols = {"x": npz["x_pos"], "y": npz["y_pos"], "t": npz["timestamp"], "p": npz["polarity"]}
                    self.metadata = {"layout": "x_pos/y_pos/timestamp/polarity"}
                else:
                    raise EventFormatError(
                        f"npz has arrays {sorted(keys)}; N-ImageNet stores 'event_data' or "
                        "x_pos/y_pos/timestamp/polarity", path, 0,
                    )
        except EventFormatError:
            raise
        except NPZ_ERRORS as exc:
            raise EventFormatError(f"not a readable npz archive ({type(exc).__name__}: {exc})", path, 0) from exc
        shapes = {k: v.shape for k, v in cols.items()}
        if any(len(s) != 1 for s in shapes.values()) or len({s[0] for s in shapes.values()}) != 1:
            raise EventFormatError(f"columns must be 1-D and equally long, got shapes {shapes}", path, 0)
        for name in ("x", "y", "t"):
            if cols[name].dtype.kind not in "iu":
                raise EventFormatError(
                    f"column {name!r} has dtype {cols[name].dtype}; N-ImageNet stores integers (t in µs)", path, 0
                )
        n = len(cols["x"])
        for name in ("x", "y"):
            if n and (cols[name].min() < 0 or cols[name].max() > 0xFFFF):
                raise EventFormatError(f"column {name!r} holds values outside 0..65535", path, 0)
        if self.geometry is None:
            self.geometry = NIMAGENET_GEOMETRY
        self._cols = cols

    def __iter__(self) -> Iterator[np.ndarray]:
        n = len(self._cols["x"])
        last_t = np.iinfo(np.int64).min
        for start in range(0, n, self.block_events):
            stop = min(n, start + self.block_events)
            block = np.empty(stop - start, dtype=EVENT_DTYPE)
            block["x"] = self._cols["x"][start:stop]
            block["y"] = self._cols["y"][start:stop]
            block["t"] = self._cols["t"][start:stop]
            block["p"] = self._cols["p"][start:stop] > 0
            # Inside a zip member there is no meaningful byte offset: errors give the event index.
            offset_of = lambda i, s=start: s + i  # noqa: E731
            yield from checked_blocks(block, self.geometry, last_t, self.path, offset_of)
            last_t = int(block["t"][-1])


register_format(FormatSpec(
    name="nmnist_bin", description="N-MNIST / N-Caltech101 5-byte ATIS records (.bin)",
    extensions=(".bin",), sniff=_sniff_nmnist, reader=NmnistReader, sniff_order=60,
))
register_format(FormatSpec(
    name="nimagenet_npz", description="N-ImageNet sample (.npz with event_data or x_pos/y_pos/timestamp/polarity)",
    extensions=(".npz",), sniff=_sniff_nimagenet, reader=NImageNetReader, sniff_order=61,
))
