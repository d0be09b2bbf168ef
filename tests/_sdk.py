"""Reading event files through the real Metavision SDK (OpenEB), for the tests marked ``sdk``.

Each reader returns EVENT_DTYPE events with the file's own times: the SDK shifts a file's time to
start at its first TIME_HIGH word by default, which every reader here turns off. Imports happen in
the functions, so collecting the tests works without the SDK (they are skipped then, see conftest).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from eventclip.events import EVENT_DTYPE
from tests.conftest import recording

EVT2_RECORDINGS = ["prophesee_evt2_sparklers_gen3_640x480.raw", "prophesee_evt2_spinner_excerpt_gen3_640x480.raw"]
EVT3_RECORDINGS = ["prophesee_evt3_driving_gen41_1280x720.raw",
                   "prophesee_evt3_pedestrians_first5000_gen41_1280x720.raw"]
RAW_RECORDINGS = EVT2_RECORDINGS + EVT3_RECORDINGS
"""Every shared Prophesee RAW recording."""

SDK_CHUNK_EVENTS = 1 << 20
"""Events per SDK slice or load: counted, never timed, so silent spans of a file cost nothing."""


def copy_recording(name: str, folder: Path) -> Path:
    """A copy of a shared recording in ``folder``: the SDK writes a ``.tmp_index`` beside a RAW file it
    opens, and the shared folder is read-only in CI."""
    return Path(shutil.copyfile(recording(name), folder / name))


def _events(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(EVENT_DTYPE) if parts else np.empty(0, EVENT_DTYPE)


def events_iterator(path: Path) -> np.ndarray:
    """SDK 4 style: ``metavision_core.event_io.EventsIterator`` (RAW through the HAL, DAT through its own
    Python reader), by event count."""
    from metavision_core.event_io import EventsIterator

    kw = {} if path.suffix == ".dat" else {"do_time_shifting": False}
    it = EventsIterator(str(path), mode="n_events", n_events=SDK_CHUNK_EVENTS, **kw)
    return _events([ev.copy() for ev in it])


def file_hints():
    """SDK 5 ``FileConfigHints`` for reading a file as it is, as fast as it decodes: no time shift, and no
    real-time playback (``Camera.from_file`` plays a file at its recorded speed by default)."""
    import metavision_sdk_stream as stream

    return stream.FileConfigHints().time_shift(False).real_time_playback(False)


def camera_slicer(path: Path) -> np.ndarray:
    """SDK 5: ``Camera.from_file`` (the HAL device and camera code of a live camera) + ``CameraStreamSlicer``."""
    import metavision_sdk_stream as stream

    camera = stream.Camera.from_file(str(path), file_hints())
    slicer = stream.CameraStreamSlicer(camera.move(), stream.SliceCondition.make_n_events(SDK_CHUNK_EVENTS))
    return _events([piece.events.copy() for piece in slicer])


def raw_reader(path: Path) -> np.ndarray:
    """``metavision_core.event_io.RawReader``, loading by event count until the file is done."""
    from metavision_core.event_io import RawReader

    reader = RawReader(str(path), max_events=4 * SDK_CHUNK_EVENTS, do_time_shifting=False)  # room for a decoded batch
    parts = []
    while not reader.is_done():
        parts.append(reader.load_n_events(SDK_CHUNK_EVENTS).copy())
    return _events(parts)


SDK_READERS = {"EventsIterator": events_iterator, "Camera+CameraStreamSlicer": camera_slicer, "RawReader": raw_reader}


def write_hdf5_with_sdk(raw: Path, out: Path) -> None:
    """Record a RAW file to HDF5 the way Metavision does: ``Camera.from_file`` (see ``file_hints``), the
    camera's metadata, every slice into ``HDF5EventFileWriter`` (which compresses with ECF)."""
    import metavision_sdk_stream as stream

    camera = stream.Camera.from_file(str(raw), file_hints())
    writer = stream.HDF5EventFileWriter(str(out))
    writer.add_metadata_map_from_camera(camera)
    for piece in stream.CameraStreamSlicer(camera.move(), stream.SliceCondition.make_n_events(1 << 16)):
        writer.add_cd_events(piece.events)
    writer.close()
