"""Prophesee/Metavision HDF5 event files (read): the ``/CD/events`` compound dataset (x, y, p, t).

Streams by slicing the dataset in blocks of ``BLOCK_EVENTS``: Metavision's own 16-byte layout is
read by HDF5 straight into EVENT_DTYPE and checked in place; other layouts are converted by field
name. Geometry comes from the file's ``geometry`` attribute (``"1280x720"``), ``width``/``height``
attributes, or the same sensor keys a RAW header has (``format``, ``plugin_name``, ...), else the
caller. Metavision compresses the dataset with Prophesee's ECF codec (HDF5 filter 36559), which
neither h5py nor hdf5plugin ship (no registry package does): HDF5 decodes it when the Metavision SDK's
plugin is on ``HDF5_PLUGIN_PATH`` (checked against files the SDK wrote), and without it such files are
detected before reading and refused with an UnsupportedFeatureError that says what to set or
install. Needs the ``hdf5`` extra (h5py).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eventclip._optional import available, require
from eventclip.events import EVENT_DTYPE, Geometry
from eventclip.io import _hdf5_kernels as K
from eventclip.io._raw_header import RawHeader
from eventclip.io.base import EventReader, FormatSpec, PathLike, register_format
from eventclip.io.errors import (
    EventFormatError,
    GeometryError,
    TruncatedFileError,
    UnsupportedFeatureError,
    file_shrank,
)
from eventclip.plugins import missing

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ECF_FILTER_ID = 36559
ECF_PLUGIN = "libH5Zecf.so"
"""The ECF plugin the Metavision SDK installs in ``<prefix>/lib/hdf5/plugin``; it needs the SDK's
``libhdf5_ecf_codec.so.1`` (in ``<prefix>/lib``) from the dynamic loader's path."""
BLOCK_EVENTS = 1 << 20
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError)
"""What h5py raises on damaged files (HDF5 errors map onto several Python types)."""
EVENTS_PATH = "CD/events"
TRIGGERS_PATH = "EXT_TRIGGER/events"


def _attr_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_text(value.item())
    return str(value)


def ecf_advice() -> str:
    """What to set or install so that HDF5 decodes ECF, judged from ``HDF5_PLUGIN_PATH`` as it is now.

    Why look: the plugin loads only with the SDK's codec library on the loader's path, and HDF5 reads
    ``HDF5_PLUGIN_PATH`` once per process, so "set the path" alone is not always the missing step."""
    folders = [f for f in os.environ.get("HDF5_PLUGIN_PATH", "").split(os.pathsep) if f]
    for folder in folders:
        plugin = Path(folder) / ECF_PLUGIN
        if plugin.is_file():
            try:
                ctypes.CDLL(str(plugin))
            except OSError as exc:
                return (f"HDF5_PLUGIN_PATH holds {plugin}, which does not load ({exc}): put the Metavision SDK's lib "
                        "folder (libhdf5_ecf_codec.so.1) on LD_LIBRARY_PATH before starting Python")
            return (f"HDF5_PLUGIN_PATH holds {plugin}, which loads, but HDF5 looks for plugins once per process: "
                    "set HDF5_PLUGIN_PATH before starting Python")
    found = f"HDF5_PLUGIN_PATH ({os.pathsep.join(folders)}) has no {ECF_PLUGIN}" if folders else \
        "HDF5_PLUGIN_PATH is not set"
    return (f"{found}. Set HDF5_PLUGIN_PATH to the Metavision SDK's lib/hdf5/plugin folder and put its lib folder "
            "(libhdf5_ecf_codec.so.1) on LD_LIBRARY_PATH, both before starting Python (OpenEB: source its env.sh); "
            "without the SDK, build the codec from https://github.com/prophesee-ai/hdf5_ecf. No pip package ships "
            "it (hdf5plugin does not). Or convert the file to RAW with Metavision first")


class Hdf5Reader(EventReader):
    """Reads ``/CD/events`` block by block; external triggers (if any) are in ``reader.triggers``."""

    format_name = "hdf5"

    def __init__(self, path: PathLike, geometry: Geometry | None = None) -> None:
        super().__init__(path, geometry)
        h5py = require("h5py", "hdf5", "reading HDF5 event files")
        if available("hdf5plugin"):
            require("hdf5plugin", "hdf5")  # registers the common compression filters with HDF5
        self._size = os.stat(self.path).st_size
        try:
            self._file = h5py.File(self.path, "r")
        except _H5_ERRORS as exc:
            raise EventFormatError(f"cannot open as HDF5: {exc}", self.path, 0) from exc
        try:
            self._open(h5py, geometry)
        except EventFormatError:
            self._file.close()
            raise
        except _H5_ERRORS as exc:
            self._file.close()
            raise EventFormatError(f"damaged HDF5 structure: {exc}", self.path) from exc

    def _open(self, h5py, geometry: Geometry | None) -> None:
        if EVENTS_PATH not in self._file:
            raise EventFormatError(f"no /{EVENTS_PATH} dataset: not a Prophesee event HDF5 file", self.path)
        ds = self._file[EVENTS_PATH]
        names = ds.dtype.names or ()
        missing = [f for f in ("x", "y", "p", "t") if f not in names]
        if ds.ndim != 1 or missing:
            raise EventFormatError(f"/{EVENTS_PATH} must be a 1-D compound dataset with x, y, p, t "
                                   f"(missing {missing}, shape {ds.shape})", self.path)
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        if ECF_FILTER_ID in filters and not h5py.h5z.filter_avail(ECF_FILTER_ID):
            raise UnsupportedFeatureError(
                f"/{EVENTS_PATH} is compressed with Prophesee's ECF codec (HDF5 filter {ECF_FILTER_ID}), which this "
                f"HDF5 cannot load. {ecf_advice()}", self.path)
        self._ds = ds
        self._direct = ds.dtype == EVENT_DTYPE  # Metavision's layout: HDF5 reads straight into our arrays
        attrs = {k: _attr_text(v) for k, v in self._file.attrs.items()}
        self.metadata = {"attributes": attrs, "filters": filters, "events": int(ds.shape[0])}
        if geometry is not None:
            self.metadata["geometry_source"] = "caller"
            return
        if "width" in attrs and "height" in attrs and attrs["width"].isdigit() and attrs["height"].isdigit():
            self.geometry = Geometry(int(attrs["width"]), int(attrs["height"]))
            self.metadata["geometry_source"] = "width/height"
            return
        found, source = RawHeader(0, fields=attrs).geometry(self.path)
        if found is None:
            raise GeometryError("the HDF5 file has no geometry attribute or known sensor; pass the sensor size, "
                                "e.g. --geometry 1280x720 or geometry=(1280, 720) in Python", self.path)
        self.geometry = found
        self.metadata["geometry_source"] = source

    @property
    def triggers(self) -> np.ndarray:
        """External trigger events (fields t µs, id, p) from ``/EXT_TRIGGER/events``, empty when absent."""
        from eventclip.events import TRIGGER_DTYPE

        try:
            if TRIGGERS_PATH not in self._file:
                return np.empty(0, dtype=TRIGGER_DTYPE)
            raw = self._file[TRIGGERS_PATH][()]
        except _H5_ERRORS as exc:
            raise EventFormatError(f"cannot read /{TRIGGERS_PATH}: {exc}", self.path) from exc
        out = np.empty(len(raw), dtype=TRIGGER_DTYPE)
        for f in ("t", "id", "p"):
            out[f] = raw[f] if f in (raw.dtype.names or ()) else 0
        return out

    def _fill(self, out: np.ndarray, start: int, last_t: int) -> tuple[int, EventFormatError | None]:
        """Read events ``start:start + len(out)`` of the dataset into ``out`` (EVENT_DTYPE) and validate them.

        Returns (how many leading events of ``out`` are valid, the error at the first bad one or None).
        Datasets in Metavision's own layout (x u2, y u2, p i2 at 0, 2, 4; t i8 at 8; 16 bytes: our
        EVENT_DTYPE) are read by HDF5 straight into ``out`` and checked in place. Any other layout
        is read as stored and converted by field name (HDF5's own compound conversion is ~10x
        slower). Errors name the event index.
        """
        stop = start + len(out)
        try:
            if self._direct:
                self._ds.read_direct(out, np.s_[start:stop], np.s_[0:len(out)])
            else:
                raw = self._ds[start:stop]
        except _H5_ERRORS as exc:
            error = EventFormatError(f"cannot read /{EVENTS_PATH}[{start}:{stop}]: {exc}", self.path)
            error.__cause__ = exc
            return 0, error
        flat = out.view(np.int64).reshape(-1, 2)
        w, h = self.geometry.width, self.geometry.height
        if self._direct:
            code, i = K.check_block(flat, w, h, last_t)
        else:
            code, i = K.convert_block(raw["x"], raw["y"], raw["p"], raw["t"], flat, w, h, last_t)
        if code == K.ERR_OUTSIDE_GEOMETRY:
            return i, GeometryError(f"event {start + i} of /{EVENTS_PATH} lies outside the sensor geometry "
                                    f"{self.geometry}", self.path)
        if code == K.ERR_BAD_POLARITY:
            return i, EventFormatError(f"event {start + i} of /{EVENTS_PATH} has a polarity other than 0 or 1",
                                       self.path)
        if code == K.ERR_TIME_BACKWARDS:
            return i, EventFormatError(f"event {start + i} of /{EVENTS_PATH} is earlier than the event before it",
                                       self.path)
        return len(out), None

    def _spans(self) -> Iterator[tuple[int, int]]:
        n = self._ds.shape[0]
        for start in range(0, n, BLOCK_EVENTS):
            yield start, min(n, start + BLOCK_EVENTS)

    def _present(self, start: int, stop: int, size: int) -> int:
        """How many of events ``start:stop`` still lie whole in the file, now ``size`` bytes long.

        Why: HDF5 reads the missing bytes of a file that another process truncated as zeros, which
        would otherwise pass for events (or surface as events going back in time). Contiguous data
        is counted to the event; chunked data to the first chunk that no longer ends in the file."""
        ds = self._ds.id
        if self._ds.chunks is None:
            offset = ds.get_offset()
            if offset is None:  # never written: HDF5 returns the fill value, nothing to lose
                return stop - start
            return min(stop - start, max(0, (size - offset) // ds.get_type().get_size() - start))
        step = self._ds.chunks[0]
        for first in range(start - start % step, stop, step):
            info = ds.get_chunk_info_by_coord((first,))
            if info.byte_offset is not None and info.byte_offset + info.size > size:
                return max(0, first - start)
        return stop - start

    def _cut(self, start: int, stop: int, streamed: bool = True) -> tuple[int, TruncatedFileError | None]:
        """``(stop, None)`` while the file is as long as when opened; else how far events ``start:stop``
        are still whole (see ``_present``) and the error to raise after them."""
        size = os.stat(self.path).st_size
        if size < self._size and (whole := self._present(start, stop, size)) < stop - start:
            return start + whole, file_shrank(self.path, size, streamed)
        return stop, None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Blocks of ``BLOCK_EVENTS`` events; at a bad event the valid ones before it are yielded,
        then the error is raised. The file's size is checked before each block: if it shrank, the
        events still whole in it are handed over, then TruncatedFileError (see ``_present``)."""
        last_t = np.iinfo(np.int64).min
        for start, stop in self._spans():
            stop, shrank = self._cut(start, stop)
            out = np.empty(stop - start, dtype=EVENT_DTYPE)
            valid, error = self._fill(out, start, last_t)
            if valid:
                yield out[:valid]
            if error is not None or shrank is not None:
                raise error or shrank
            if len(out):
                last_t = int(out["t"][-1])

    def read_all(self) -> np.ndarray:
        """The whole dataset read into one preallocated array (no concatenation); a file that shrank
        while read raises TruncatedFileError (nothing partial is returned)."""
        out = np.empty(self._ds.shape[0], dtype=EVENT_DTYPE)
        last_t = np.iinfo(np.int64).min
        for start, stop in self._spans():
            whole, shrank = self._cut(start, stop, streamed=False)
            _, error = self._fill(out[start:whole], start, last_t)
            if error is not None or shrank is not None:
                raise error or shrank
            if stop > start:
                last_t = int(out["t"][stop - 1])
        return out

    def close(self) -> None:
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()
            self._file = None


def _sniff(head: bytes, path: Path) -> bool:
    return head.startswith(HDF5_SIGNATURE)


def _unavailable() -> str | None:
    """None when h5py is installed (checked without importing it), else how to get it."""
    return missing("h5py", "pip install 'eventclip[hdf5]'")


register_format(FormatSpec("hdf5", "Prophesee/Metavision HDF5 (/CD/events)", (".hdf5", ".h5"), _sniff, Hdf5Reader,
                           sniff_order=30), unavailable=_unavailable)
