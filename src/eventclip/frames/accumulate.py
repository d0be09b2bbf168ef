"""Event counts per pixel for many windows at once, and the frame normalisations built on them.

Three backends compute the same counts: :func:`count_events_reference` (plain numpy,
``np.bincount``; the definition), :func:`count_events` (a single-threaded numba loop, the CPU
path) and :func:`count_events_torch` (one ``index_add_`` over ``window*C*H*W + c*H*W + y*W + x``,
so a whole batch is one scatter kernel on CUDA, with no host sync, and the result stays on the device).
Normalisations (:func:`normalise_counts`, :func:`normalise_counts_torch`) use the same float32
operations in the same order so both backends agree to 1e-6.

Batches: ``events`` holds the events of B windows back to back and ``offsets`` (B + 1 ints)
marks where each window starts and ends: window b is ``events[offsets[b]:offsets[b+1]]``.
``events`` may be one array or a sequence of arrays (:data:`Events`) standing for their
concatenation: the pieces of chunks a stream arrived in, counted in place instead of joined.
Counts are in events per pixel; frames are (B, H, W) or, per polarity, (B, 2, H, W) with
channel 0 = OFF (p = 0) and channel 1 = ON (p > 0). H, W are sensor pixels (or the ROI's), or,
when a :class:`~eventclip.frames.grid.ModelGrid` is given (``grid=``), the model's S x S grid:
each event is then counted at its rescaled coordinates (:mod:`eventclip.frames.grid` says why).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from eventclip.events import EVENT_DTYPE, Geometry, as_events, concat_events
from eventclip.frames.errors import EventOutsideGeometryError, FramesError
from eventclip.frames.grid import ModelGrid, Roi, check_roi

if TYPE_CHECKING:
    import torch

Variant = Literal["paper", "authors", "polarity"]
Events = np.ndarray | Sequence[np.ndarray]
"""One event array, or time-ordered pieces of one stream that stand for their concatenation."""


def stack_windows(windows: Sequence[np.ndarray | Sequence[np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray]:
    """The events of B windows as one list of pieces (no copy) plus offsets (B + 1 int64) into their concatenation.

    Each window is an event array or a sequence of them (e.g. :attr:`~eventclip.frames.windows.Window.parts`).
    """
    pieces: list[np.ndarray] = []
    offsets = np.zeros(len(windows) + 1, dtype=np.int64)
    for b, window in enumerate(windows):
        parts = [window] if isinstance(window, np.ndarray) else list(window)
        pieces.extend(as_event_array(p) for p in parts if len(p))
        offsets[b + 1] = offsets[b] + sum(len(p) for p in parts)
    return pieces, offsets


def _pieces(events: Events) -> list[np.ndarray]:
    """The non-empty pieces of ``events`` as contiguous EVENT_DTYPE arrays."""
    parts = [events] if isinstance(events, np.ndarray) else list(events)
    return [np.ascontiguousarray(as_event_array(p)) for p in parts if len(p)]


def join_events(events: Events) -> np.ndarray:
    """``events`` as one EVENT_DTYPE array (a copy only when it is in several pieces)."""
    parts = _pieces(events)
    if len(parts) == 1:
        return parts[0]
    return concat_events(parts) if parts else np.zeros(0, dtype=EVENT_DTYPE)


def as_event_array(events: np.ndarray) -> np.ndarray:
    """The events as EVENT_DTYPE: as is when already so, else converted (one copy) from any
    structured array with x, y, p and t fields (e.g. the packed dtype np.concatenate gives)."""
    if isinstance(events, np.ndarray) and events.dtype == EVENT_DTYPE:
        return events
    if isinstance(events, np.ndarray) and events.dtype.names:
        try:
            return as_events(events)
        except ValueError as exc:
            raise FramesError(f"cannot use these events: {exc}") from exc
    raise FramesError(
        f"events must be a structured numpy array with x, y, p, t fields (eventclip.events.EVENT_DTYPE), got "
        f"{type(events).__name__} with dtype {getattr(events, 'dtype', None)}"
    )


def _check_offsets(offsets: np.ndarray | Sequence[int] | None, n: int) -> np.ndarray:
    if offsets is None:
        return np.array([0, n], dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64)
    if off.ndim != 1 or len(off) < 1 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 0):
        raise FramesError(
            f"offsets must be B + 1 non-decreasing indices from 0 to len(events)={n} "
            f"(window b = events[offsets[b]:offsets[b+1]]); got {off[:8].tolist()}{'...' if len(off) > 8 else ''}"
        )
    return off


def _raise_outside(events: np.ndarray, geometry: Geometry) -> None:
    bad = (events["x"] >= geometry.width) | (events["y"] >= geometry.height)
    i = int(np.argmax(bad))
    raise EventOutsideGeometryError(
        f"event {i} at (x={int(events['x'][i])}, y={int(events['y'][i])}) lies outside the sensor geometry "
        f"{geometry} ({int(bad.sum())} such events); pass the recording's real geometry or filter the events",
        index=i,
    )


def count_events_reference(
    events: Events, geometry: Geometry, offsets: np.ndarray | Sequence[int] | None = None, *,
    per_polarity: bool = False, grid: ModelGrid | None = None,
) -> np.ndarray:
    """Counts per pixel for each window with ``np.bincount``: the plain-numpy definition.

    Returns uint32 (B, H, W), or (B, 2, H, W) with ``per_polarity``; on ``grid``, (B, [2,] S, S)
    where each event counts at its grid pixel and events of dropped columns/rows count nowhere.
    """
    events = join_events(events)
    off = _check_offsets(offsets, len(events))
    b = len(off) - 1
    if len(events) and ((events["x"] >= geometry.width).any() or (events["y"] >= geometry.height).any()):
        _raise_outside(events, geometry)
    channels = 2 if per_polarity else 1
    window = np.repeat(np.arange(b, dtype=np.int64), np.diff(off))
    on = events["p"] > 0
    if grid is None:
        rows, cols, x, y = geometry.height, geometry.width, events["x"].astype(np.int64), events["y"].astype(np.int64)
    else:
        _check_grid(grid, geometry)
        rows = cols = grid.size
        x, y, keep = grid.map_events(events["x"], events["y"])
        x, y, window, on = x[keep].astype(np.int64), y[keep].astype(np.int64), window[keep], on[keep]
    plane = rows * cols
    index = window * (channels * plane) + y * cols + x
    if per_polarity:
        index += on.astype(np.int64) * plane
    counts = np.bincount(index, minlength=b * channels * plane).astype(np.uint32)
    return counts.reshape((b, channels, rows, cols) if per_polarity else (b, rows, cols))


def _check_grid(grid: ModelGrid, geometry: Geometry) -> None:
    if grid.geometry != geometry:
        raise FramesError(f"the model grid was made for a {grid.geometry} sensor, not {geometry}; "
                          "make it with eventclip.frames.grid.model_grid(geometry, size, fit, roi)")


def _count_on_grid(parts: list[np.ndarray], off: np.ndarray, geometry: Geometry, grid: ModelGrid,
                   per_polarity: bool) -> np.ndarray:
    """:func:`count_events` on a model grid: the numba table kernel, one call per piece."""
    from eventclip.frames import _kernels

    _check_grid(grid, geometry)
    b = len(off) - 1
    channels = 2 if per_polarity else 1
    plane = grid.size * grid.size
    x_lut, y_lut = grid.kernel_tables
    counts = np.zeros(b * channels * plane + 1, dtype=np.uint32)
    outside = False
    for first, local, part in _piece_windows(parts, off):
        # The kernel's trash slot is its buffer's last entry, shared by every window it counts.
        outside |= _kernels.count_windows_mapped(part.view(np.int64), local, x_lut, y_lut, plane, per_polarity,
                                                 counts[first * channels * plane:])
    if outside:
        _raise_outside(join_events(parts), geometry)
    shape = (b, channels, grid.size, grid.size) if per_polarity else (b, grid.size, grid.size)
    return counts[:-1].reshape(shape)


def count_events(
    events: Events, geometry: Geometry, offsets: np.ndarray | Sequence[int] | None = None, *,
    per_polarity: bool = False, grid: ModelGrid | None = None,
) -> np.ndarray:
    """Counts per pixel for each window with the numba kernel (same result as the reference).

    Single-threaded on purpose: the daemon runs it beside the encoder, and one core already
    streams the events faster than a sensor produces them. Returns uint32 (B, H, W) or (B, 2, H, W).
    Per polarity, it counts into uint16 with carries (:func:`_kernels.count_windows16`). Sensors
    wider or taller than 32768 pixels (none exist) take the numpy reference instead, because the
    kernels' branch-free geometry check is exact only up to that size. On a ``grid`` it counts each
    event at its grid pixel (:func:`_kernels.count_windows_mapped`), at any sensor size.
    """
    from eventclip.frames import _kernels

    if grid is not None:
        parts = _pieces(events)
        return _count_on_grid(parts, _check_offsets(offsets, sum(len(p) for p in parts)), geometry, grid,
                              per_polarity)
    if max(geometry.width, geometry.height) > _kernels.MAX_SIDE:
        return count_events_reference(events, geometry, offsets, per_polarity=per_polarity)
    parts = _pieces(events)
    off = _check_offsets(offsets, sum(len(p) for p in parts))
    b = len(off) - 1
    channels = 2 if per_polarity else 1
    plane = geometry.width * geometry.height
    shape = (b, channels, geometry.height, geometry.width) if per_polarity else (b, geometry.height, geometry.width)
    size = _kernels.padded_size(b * channels, plane)
    used = b * channels * plane
    # One kernel call per piece, over the windows it overlaps; the window index in the kernel is
    # relative, so the counts it gets start at the piece's first window.
    if not per_polarity:
        counts = np.zeros(size, dtype=np.uint32)
        outside = False
        for first, local, part in _piece_windows(parts, off):
            outside |= _kernels.count_windows(part.view(np.int64), local, geometry.width, geometry.height, False,
                                              counts[first * plane:])
        if outside:
            _raise_outside(join_events(parts), geometry)
        return counts[:used].reshape(shape)
    # Two planes: uint16 counts (half the footprint, ~1.6x faster on 1280x720) plus carries.
    counts16 = np.zeros(size, dtype=np.uint16)
    carry = np.zeros(size, dtype=np.uint32)
    flags = 0
    for first, local, part in _piece_windows(parts, off):
        start = first * channels * plane
        flags |= _kernels.count_windows16(part.view(np.int64), local, geometry.width, geometry.height, True,
                                          counts16[start:], carry[start:])
    if flags & 1:
        _raise_outside(join_events(parts), geometry)
    counts = counts16[:used].astype(np.uint32)
    if flags & 2:
        counts += carry[:used] << np.uint32(16)
    return counts.reshape(shape)


def _piece_windows(parts: list[np.ndarray], offsets: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each piece: the first window it touches and the window offsets relative to the piece."""
    pos = 0
    for part in parts:
        n = len(part)
        first = int(np.searchsorted(offsets, pos, side="right")) - 1
        stop = int(np.searchsorted(offsets, pos + n, side="left"))
        yield first, np.clip(offsets[first : stop + 1] - pos, 0, n), part
        pos += n


def _check_mask(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != geometry.shape:
        raise FramesError(
            f"hot_pixel_mask has shape {mask.shape}; it must be (height, width) = {geometry.shape} "
            f"of the sensor, True where a pixel is to be ignored"
        )
    return mask.astype(bool)


def _check_channels(shape: tuple[int, ...], variant: str) -> None:
    ok = len(shape) == 4 and (shape[1] == 2 or (shape[1] == 1 and variant == "paper"))
    if not ok:
        raise FramesError(
            f"counts for variant {variant!r} must be shaped (B, 2, H, W) (per polarity)"
            f"{' or (B, 1, H, W)' if variant == 'paper' else ''}, got {shape}"
        )


def normalise_counts(
    counts: np.ndarray,
    variant: Variant = "paper",
    *,
    clip_percentile: float | None = None,
    clip_nonzero_mean: bool = False,
) -> np.ndarray:
    """Turn per-pixel counts into the model's frames (float32).

    ``counts`` is per polarity (B, 2, H, W), or for ``paper`` also the total (B, 1, H, W), which
    is cheaper to count. ``paper``: E = OFF + ON, then E / (max E + 1)
    -> (B, H, W) in [0, 1). ``authors``: each polarity / (its max + 1), mapped to [-1, 1], then
    the two averaged -> (B, H, W). ``polarity``: each polarity / (its max + 1) -> (B, 2, H, W).
    ``clip_percentile`` (0-100) first clips each window's (and channel's) counts at that
    percentile of its non-zero pixels, so a few hot pixels cannot squash the rest to black.
    ``clip_nonzero_mean`` then clips each window's counts (all its channels together) at the mean of
    its non-zero counts: the authors' ``remove_hot_pixels``, which also makes busy and quiet regions
    look alike. Windows without events are left as they are.
    """
    _check_channels(tuple(counts.shape), variant)
    c = counts.astype(np.float32)
    if variant == "paper" and c.shape[1] == 2:
        c = c.sum(axis=1, keepdims=True, dtype=np.float32)
    if clip_percentile is not None:
        for idx in np.ndindex(c.shape[:2]):
            plane = c[idx]
            nz = plane[plane > 0]
            if nz.size:
                np.minimum(plane, np.float32(np.percentile(nz.astype(np.float64), clip_percentile)), out=plane)
    if clip_nonzero_mean:
        for window in c:
            nz = window[window > 0]
            if nz.size:
                np.minimum(window, np.float32(nz.mean(dtype=np.float64)), out=window)
    peak = c.max(axis=(2, 3), keepdims=True) + np.float32(1)
    c = c / peak
    if variant == "paper":
        return c[:, 0]
    if variant == "authors":
        c = c * np.float32(2) - np.float32(1)
        return (c[:, 0] + c[:, 1]) * np.float32(0.5)
    if variant == "polarity":
        return c
    raise FramesError(f"unknown frame variant {variant!r}; use 'paper', 'authors' or 'polarity'")


def event_frames(
    events: Events,
    geometry: Geometry,
    offsets: np.ndarray | Sequence[int] | None = None,
    *,
    variant: Variant = "paper",
    clip_percentile: float | None = None,
    clip_nonzero_mean: bool = False,
    hot_pixel_mask: np.ndarray | None = None,
    roi: Roi | None = None,
    grid: ModelGrid | None = None,
    backend: Literal["numba", "numpy"] = "numba",
) -> np.ndarray:
    """Frames (float32) for B windows: count, mask hot pixels, crop to the ROI, then normalise.

    ``hot_pixel_mask`` is (H, W) bool at sensor resolution, True = ignore that pixel.
    ``roi`` is (x, y, width, height) in sensor pixels; the frames have the ROI's size. On a
    ``grid`` (which carries its own ROI, so ``roi`` must be None) events are counted at their grid
    pixels and the frames are (B, [2,] S, S); masked pixels' events are removed before counting.
    """
    count = {"numba": count_events, "numpy": count_events_reference}.get(backend)
    if count is None:
        raise FramesError(f"unknown CPU backend {backend!r}; use 'numba' or 'numpy'")
    if grid is not None:
        if roi is not None:
            raise FramesError("pass the ROI to model_grid(), not to event_frames(), when counting on a model grid")
        if hot_pixel_mask is not None:
            events, offsets = _drop_masked(events, geometry, offsets, hot_pixel_mask)
        counts = count(events, geometry, offsets, per_polarity=variant != "paper", grid=grid)
        return frames_from_counts(counts, geometry, variant=variant, clip_percentile=clip_percentile,
                                  clip_nonzero_mean=clip_nonzero_mean, grid=grid)
    check_roi(roi, geometry)
    counts = count(events, geometry, offsets, per_polarity=variant != "paper")
    return frames_from_counts(counts, geometry, variant=variant, clip_percentile=clip_percentile,
                              clip_nonzero_mean=clip_nonzero_mean, hot_pixel_mask=hot_pixel_mask, roi=roi)


def _drop_masked(events: Events, geometry: Geometry, offsets: np.ndarray | Sequence[int] | None,
                 mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The events not on masked pixels, and the window offsets that still fit them (one copy)."""
    joined = join_events(events)
    off = _check_offsets(offsets, len(joined))
    if len(joined) and ((joined["x"] >= geometry.width).any() or (joined["y"] >= geometry.height).any()):
        _raise_outside(joined, geometry)
    keep = ~_check_mask(mask, geometry)[joined["y"], joined["x"]]
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return joined[keep], kept_before[off]


def frames_from_counts(
    counts: np.ndarray,
    geometry: Geometry,
    *,
    variant: Variant = "paper",
    clip_percentile: float | None = None,
    clip_nonzero_mean: bool = False,
    hot_pixel_mask: np.ndarray | None = None,
    roi: Roi | None = None,
    grid: ModelGrid | None = None,
) -> np.ndarray:
    """:func:`event_frames` from counts already made: uint32 (B, H, W) for ``paper``, (B, 2, H, W) otherwise
    (H, W = S, S for counts made on a ``grid``, which masks and ROIs must have been applied before).

    For counts kept up to date while windows are open (:class:`eventclip.frames.running.RunningCounts`).
    Hot pixels are zeroed in ``counts`` itself (they are the caller's to reuse no further).
    """
    rows, cols = grid.shape if grid is not None else (geometry.height, geometry.width)
    want = (3,) if variant == "paper" else (4,)
    if counts.ndim not in want or counts.shape[-2:] != (rows, cols) or (
            counts.ndim == 4 and counts.shape[1] != 2):
        layout = "(B, H, W)" if variant == "paper" else "(B, 2, H, W)"
        where = f"the {grid.size}x{grid.size} model grid" if grid is not None else str(geometry)
        raise FramesError(f"variant {variant!r} needs counts shaped {layout} for {where}, got {counts.shape}")
    if counts.ndim == 3:
        counts = counts[:, None]
    if grid is not None:
        if hot_pixel_mask is not None or roi is not None:
            raise FramesError("counts on a model grid cannot take a hot-pixel mask or ROI afterwards; "
                              "give the ROI to model_grid() and the mask to event_frames()")
    else:
        x, y, w, h = check_roi(roi, geometry)
        if hot_pixel_mask is not None:
            counts[:, :, _check_mask(hot_pixel_mask, geometry)] = 0
        counts = counts[:, :, y : y + h, x : x + w]
    return normalise_counts(counts, variant, clip_percentile=clip_percentile, clip_nonzero_mean=clip_nonzero_mean)


def events_to_torch(events: Events, device: str | torch.device = "cpu") -> torch.Tensor:
    """The events' raw 16-byte records as an (N, 2) int64 tensor on ``device`` (one copy, no reformatting).

    Word 0 of each row packs x (bits 0-15), y (16-31) and p (32-47, signed); word 1 is t (µs).
    Pieces are copied one by one into the tensor, so they are never joined on the host first.
    """
    import torch

    parts = _pieces(events)
    if len(parts) == 1:
        return torch.from_numpy(parts[0].view(np.int64).reshape(-1, 2)).to(device, non_blocking=True)
    out = torch.empty((sum(len(p) for p in parts), 2), dtype=torch.int64, device=device)
    pos = 0
    for part in parts:
        out[pos : pos + len(part)].copy_(torch.from_numpy(part.view(np.int64).reshape(-1, 2)), non_blocking=True)
        pos += len(part)
    return out


def count_events_torch(
    events: Events | torch.Tensor,
    geometry: Geometry,
    offsets: np.ndarray | Sequence[int] | torch.Tensor | None = None,
    *,
    per_polarity: bool = False,
    device: str | torch.device | None = None,
    check: bool = True,
    grid: ModelGrid | None = None,
) -> torch.Tensor:
    """Counts per pixel for each window with torch (one ``index_add_``); float32 on the events' device.

    ``events`` is an event array or pieces (copied to ``device``, default CPU) or the tensor from
    :func:`events_to_torch`. Checking the geometry costs one device sync; ``check=False`` skips
    it for events the caller has already validated (the readers check x/y against the header):
    an out-of-range event then lands in a discarded bin instead of raising. On a ``grid`` each event
    counts at its grid pixel (the tables are copied to the device once per grid and device).
    """
    import torch

    if isinstance(events, torch.Tensor):
        raw = events if device is None else events.to(device)
    else:
        raw = events_to_torch(events, device or "cpu")
    n = raw.shape[0]
    if isinstance(offsets, torch.Tensor):
        off = offsets.to(device=raw.device, dtype=torch.int64)
    else:
        off = torch.from_numpy(_check_offsets(offsets, n)).to(raw.device)
    b = off.shape[0] - 1
    channels = 2 if per_polarity else 1
    plane = geometry.width * geometry.height
    word = raw[:, 0]
    x = word & 0xFFFF
    y = (word >> 16) & 0xFFFF
    bad = (x >= geometry.width) | (y >= geometry.height)
    total = b * channels * plane
    if check and n and bool(bad.any()):
        i = int(torch.argmax(bad.to(torch.uint8)))
        raise EventOutsideGeometryError(
            f"event {i} at (x={int(x[i])}, y={int(y[i])}) lies outside the sensor geometry {geometry} "
            f"({int(bad.sum())} such events); pass the recording's real geometry or filter the events",
            index=i,
        )
    window = torch.repeat_interleave(torch.arange(b, device=raw.device), off[1:] - off[:-1], output_size=n)
    rows, cols = geometry.height, geometry.width
    if grid is not None:
        _check_grid(grid, geometry)
        rows = cols = grid.size
        plane = rows * cols
        total = b * channels * plane
        x_lut, y_lut = _grid_tables_torch(grid, str(raw.device))
        pos = x_lut[x.clamp(max=geometry.width)] + y_lut[y.clamp(max=geometry.height)]
        bad = bad | (pos >= plane)
    else:
        pos = y * geometry.width + x
    index = window * (channels * plane) + pos
    if per_polarity:
        p = (word >> 32) & 0xFFFF
        index += ((p > 0) & (p < 0x8000)).to(torch.int64) * plane
    index = torch.where(bad, total, index)
    # index_add_ (atomics on CUDA) instead of bincount, which syncs to size its output.
    ones = torch.ones(1, dtype=torch.int32, device=raw.device).expand(n)
    counts = torch.zeros(total + 1, dtype=torch.int32, device=raw.device).index_add_(0, index, ones)
    counts = counts[:total].to(torch.float32)
    return counts.reshape((b, channels, rows, cols) if per_polarity else (b, rows, cols))


@lru_cache(maxsize=16)
def _grid_tables_torch(grid: ModelGrid, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's kernel tables as int64 tensors on ``device``, so a live GPU loop copies them once."""
    import torch

    x, y = grid.kernel_tables
    return torch.from_numpy(x.astype(np.int64)).to(device), torch.from_numpy(y.astype(np.int64)).to(device)


def _nonzero_percentile_torch(c: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per (window, channel): the ``percentile`` of the non-zero values, as numpy's default
    ("linear") method computes it, with no host sync: after an ascending sort the k non-zero
    values are the last k of each row, so the interpolation indices are plain arithmetic.
    Rows without events get +inf (nothing to clip). Returns float32 (B, C, 1, 1)."""
    import torch

    b, ch = c.shape[:2]
    flat = c.reshape(b * ch, -1)
    n = flat.shape[1]
    k = (flat > 0).sum(dim=1)
    ordered = flat.sort(dim=1).values.to(torch.float64)
    pos = (k - 1).clamp(min=0).to(torch.float64) * (percentile / 100.0)
    lo = pos.floor().to(torch.int64)
    hi = torch.minimum(lo + 1, (k - 1).clamp(min=0))
    a = ordered.gather(1, (n - k + lo).clamp(max=n - 1)[:, None])[:, 0]
    z = ordered.gather(1, (n - k + hi).clamp(max=n - 1)[:, None])[:, 0]
    t = pos - lo.to(torch.float64)
    value = torch.where(t >= 0.5, z - (z - a) * (1 - t), a + (z - a) * t)  # numpy's _lerp
    value = torch.where(k > 0, value, torch.full_like(value, float("inf")))
    return value.to(torch.float32).reshape(b, ch, 1, 1)


def normalise_counts_torch(
    counts: torch.Tensor, variant: Variant = "paper", *, clip_percentile: float | None = None,
    clip_nonzero_mean: bool = False,
) -> torch.Tensor:
    """Torch twin of :func:`normalise_counts` (same operations, same float32 results, same device)."""
    import torch

    _check_channels(tuple(counts.shape), variant)
    c = counts.to(torch.float32)
    if variant == "paper" and c.shape[1] == 2:
        c = c.sum(dim=1, keepdim=True)
    if clip_percentile is not None:
        c = torch.minimum(c, _nonzero_percentile_torch(c, clip_percentile))
    if clip_nonzero_mean:
        nonzero = (c > 0).sum(dim=(1, 2, 3), keepdim=True)
        mean = c.to(torch.float64).sum(dim=(1, 2, 3), keepdim=True) / nonzero.clamp(min=1)
        c = torch.minimum(c, torch.where(nonzero > 0, mean, torch.inf).to(torch.float32))
    peak = c.amax(dim=(2, 3), keepdim=True) + 1.0
    c = c / peak
    if variant == "paper":
        return c[:, 0]
    if variant == "authors":
        c = c * 2.0 - 1.0
        return (c[:, 0] + c[:, 1]) * 0.5
    if variant == "polarity":
        return c
    raise FramesError(f"unknown frame variant {variant!r}; use 'paper', 'authors' or 'polarity'")


def event_frames_torch(
    events: Events | torch.Tensor,
    geometry: Geometry,
    offsets: np.ndarray | Sequence[int] | torch.Tensor | None = None,
    *,
    variant: Variant = "paper",
    clip_percentile: float | None = None,
    clip_nonzero_mean: bool = False,
    hot_pixel_mask: np.ndarray | torch.Tensor | None = None,
    roi: Roi | None = None,
    grid: ModelGrid | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Torch twin of :func:`event_frames`; the frames stay on the events' device (no host round trip)."""
    import torch

    mask = None
    if hot_pixel_mask is not None:
        mask = hot_pixel_mask if isinstance(hot_pixel_mask, torch.Tensor) else torch.from_numpy(
            _check_mask(hot_pixel_mask, geometry))
        if tuple(mask.shape) != geometry.shape:
            _check_mask(np.zeros(tuple(mask.shape), bool), geometry)
    norm = {"clip_percentile": clip_percentile, "clip_nonzero_mean": clip_nonzero_mean}
    if grid is not None:
        if roi is not None:
            raise FramesError("pass the ROI to model_grid(), not to event_frames_torch(), when counting on a grid")
        if mask is not None:
            events, offsets = _drop_masked_torch(events, geometry, offsets, mask, device)
        counts = count_events_torch(events, geometry, offsets, per_polarity=variant != "paper", device=device,
                                    grid=grid)
        return normalise_counts_torch(counts if counts.dim() == 4 else counts[:, None], variant, **norm)
    x, y, w, h = check_roi(roi, geometry)
    counts = count_events_torch(events, geometry, offsets, per_polarity=variant != "paper", device=device)
    if counts.dim() == 3:
        counts = counts[:, None]
    if mask is not None:
        counts = counts.masked_fill(mask.to(device=counts.device, dtype=torch.bool), 0.0)
    counts = counts[:, :, y : y + h, x : x + w]
    return normalise_counts_torch(counts, variant, **norm)


def _drop_masked_torch(events: Events | torch.Tensor, geometry: Geometry,
                       offsets: np.ndarray | Sequence[int] | torch.Tensor | None, mask: torch.Tensor,
                       device: str | torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch twin of :func:`_drop_masked`: the raw event rows not on masked pixels and their offsets."""
    import torch

    raw = events if isinstance(events, torch.Tensor) else events_to_torch(events, device or "cpu")
    if device is not None:
        raw = raw.to(device)
    off = (offsets.to(device=raw.device, dtype=torch.int64) if isinstance(offsets, torch.Tensor)
           else torch.from_numpy(_check_offsets(offsets, raw.shape[0])).to(raw.device))
    word = raw[:, 0]
    x = (word & 0xFFFF).clamp(max=geometry.width - 1)
    y = ((word >> 16) & 0xFFFF).clamp(max=geometry.height - 1)
    inside = ((word & 0xFFFF) < geometry.width) & (((word >> 16) & 0xFFFF) < geometry.height)
    keep = ~(mask.to(device=raw.device, dtype=torch.bool)[y, x] & inside)
    kept_before = torch.cat([torch.zeros(1, dtype=torch.int64, device=raw.device), keep.cumsum(0)])
    return raw[keep], kept_before[off]
