"""The ASCII ``%`` header of Prophesee RAW files: parse it, and work out the encoding and geometry.

A RAW file starts with lines ``% key value`` and, in recent files, ends the header with ``% end``.
Older files (Gen3/Gen4.1 EVKs) have no ``% end``, no ``% geometry`` and no ``% format`` line, so
the header ends at the first byte that does not start a ``% `` line, and the sensor size must be
inferred from the plugin name, system ID or sensor generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from eventclip.events import Geometry
from eventclip.io.errors import EventFormatError, GeometryError

MAX_HEADER_BYTES = 1 << 20
"""A header longer than 1 MiB is not a header: fail instead of scanning a whole data file."""

# Geometry by sensor, for headers without a geometry line. Keys are matched as substrings of the
# plugin name (lower case); the system IDs are those written by Prophesee EVKs in real recordings.
_PLUGIN_GEOMETRY = (
    ("genx320", Geometry(320, 320)),
    ("imx636", Geometry(1280, 720)),
    ("gen41", Geometry(1280, 720)),
    ("gen4", Geometry(1280, 720)),
    ("gen31", Geometry(640, 480)),
    ("gen3", Geometry(640, 480)),
)
_GENERATION_GEOMETRY = {"3.0": Geometry(640, 480), "3.1": Geometry(640, 480), "4.0": Geometry(1280, 720),
                        "4.1": Geometry(1280, 720), "320": Geometry(320, 320)}
_SYSTEM_ID_GEOMETRY = {21: Geometry(640, 480), 48: Geometry(1280, 720)}

_EVT_NAMES = {"2.0": "evt2", "2": "evt2", "evt2": "evt2", "evt20": "evt2", "2.1": "evt21", "evt21": "evt21",
              "3.0": "evt3", "3": "evt3", "evt3": "evt3", "evt30": "evt3"}


@dataclass
class RawHeader:
    """What the header says. ``data_offset`` is the byte where the event words begin."""

    data_offset: int
    fields: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    """Byte offset of the line each of ``fields`` came from (its first occurrence)."""

    @property
    def format_fields(self) -> dict[str, str]:
        """The ``key=value`` options of a ``% format EVT3;height=720;width=1280`` line."""
        fmt = self.fields.get("format", "")
        out = {}
        for part in fmt.split(";")[1:]:
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip().lower()] = v.strip()
        return out

    def encoding(self) -> str | None:
        """``evt2``, ``evt21`` or ``evt3`` as the header states it (``% format`` or ``% evt``), else None."""
        fmt = self.fields.get("format")
        if fmt:
            name = fmt.split(";")[0].strip().lower()
            if name in _EVT_NAMES:
                return _EVT_NAMES[name]
        evt = self.fields.get("evt")
        if evt:
            return _EVT_NAMES.get(evt.strip().lower())
        return None

    def inferred_encoding(self) -> str | None:
        """The stated encoding, else the EVK default for the plugin (Gen3 EVKs wrote EVT 2.0, Gen4.1 EVT 3.0)."""
        stated = self.encoding()
        if stated:
            return stated
        plugin = self.fields.get("plugin_name", "").lower()
        if "gen3" in plugin:
            return "evt2"
        if "gen41" in plugin or "imx636" in plugin:
            return "evt3"
        return None

    def geometry(self, path: Path | None = None) -> tuple[Geometry | None, str]:
        """The sensor geometry and where it came from (``format``, ``geometry``, ``plugin_name``, ...).

        A ``% format`` width/height or a ``% geometry`` line that is there but not two positive whole
        numbers raises GeometryError naming the line and its byte offset (in ``path``): such a header
        is corrupt, and guessing from the sensor name instead could hide it.
        """
        ff = self.format_fields
        if "width" in ff or "height" in ff:
            found = _positive_pair(ff.get("width", ""), ff.get("height", ""))
            if found is None:
                raise self._invalid("format", "width and height", path)
            return found, "format"
        geo = self.fields.get("geometry")
        if geo is not None:
            m = re.fullmatch(r"\s*(-?\d+)\s*x\s*(-?\d+)\s*", geo)
            found = _positive_pair(m.group(1), m.group(2)) if m else None
            if found is None:
                raise self._invalid("geometry", "WIDTHxHEIGHT", path)
            return found, "geometry"
        plugin = self.fields.get("plugin_name", "").lower()
        for key, geometry in _PLUGIN_GEOMETRY:
            if key in plugin:
                return geometry, "plugin_name"
        for key in ("sensor_generation", "generation"):
            gen = self.fields.get(key, "").strip()
            if gen in _GENERATION_GEOMETRY:
                return _GENERATION_GEOMETRY[gen], key
        sid = self.fields.get("system_ID", self.fields.get("system_id", "")).strip()
        if sid.isdigit() and int(sid) in _SYSTEM_ID_GEOMETRY:
            return _SYSTEM_ID_GEOMETRY[int(sid)], "system_ID"
        return None, ""


    def _invalid(self, key: str, form: str, path: Path | None) -> GeometryError:
        return GeometryError(f"invalid header line '% {key} {self.fields[key]}': the sensor size must be {form} in "
                             "pixels, both positive; fix the header or pass the sensor size (geometry=(1280, 720) "
                             "in Python)", path, self.offsets.get(key))


def _positive_pair(width: str, height: str) -> Geometry | None:
    """Geometry(width, height) from two decimal strings, or None unless both are positive whole numbers."""
    try:
        w, h = int(width), int(height)
    except ValueError:
        return None
    return Geometry(w, h) if w > 0 and h > 0 else None


def parse_header(head: bytes) -> RawHeader:
    """Parse the ``%`` lines at the start of ``head``; stops at ``% end`` or the first non-``% `` line.

    A line counts as header when it starts with ``% `` (or is just ``%``) and ends with a newline;
    a header line that runs off the end of ``head`` is not counted (the caller passes enough bytes).
    """
    pos = 0
    hdr = RawHeader(0)
    n = len(head)
    while pos < n and head[pos : pos + 1] == b"%":
        nxt = head[pos + 1 : pos + 2]
        if nxt not in (b" ", b"\n", b"\r"):
            break
        nl = head.find(b"\n", pos)
        if nl < 0:
            break
        raw = head[pos + 1 : nl].rstrip(b"\r")
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            break
        hdr.lines.append(line)
        if line == "end":
            pos = nl + 1
            break
        if line:
            key, _, value = line.partition(" ")
            if key not in hdr.fields:
                hdr.fields[key] = value.strip()
                hdr.offsets[key] = pos
        pos = nl + 1
    hdr.data_offset = pos
    return hdr


def read_header(path: Path) -> RawHeader:
    """Read and parse a RAW file's header, raising EventFormatError when it does not end within 1 MiB."""
    with path.open("rb") as fh:
        head = fh.read(MAX_HEADER_BYTES)
    hdr = parse_header(head)
    if hdr.data_offset >= MAX_HEADER_BYTES:
        raise EventFormatError("the '%' header does not end within 1 MiB; is this a RAW file?", path, hdr.data_offset)
    return hdr


def resolve_geometry(hdr: RawHeader, given: Geometry | None, path: Path) -> tuple[Geometry, str]:
    """The caller's geometry when given, else the header's, else GeometryError asking for width/height."""
    if given is not None:
        return given, "caller"
    geometry, source = hdr.geometry(path)
    if geometry is None:
        raise GeometryError(
            "the RAW header has no geometry, format or known sensor line; pass the sensor size, "
            "e.g. --geometry 1280x720 on the command line or geometry=(1280, 720) in Python",
            path,
            0,
        )
    return geometry, source


def format_header(encoding: str, geometry: Geometry, extra: dict[str, str] | None = None) -> bytes:
    """A header in the style Metavision writes: ``% evt``, ``% format ...;height;width``, ``% geometry``, ``% end``."""
    evt, fmt = {"evt2": ("2.0", "EVT2"), "evt21": ("2.1", "EVT21"), "evt3": ("3.0", "EVT3")}[encoding]
    lines = [f"% evt {evt}", f"% format {fmt};height={geometry.height};width={geometry.width}",
             f"% geometry {geometry.width}x{geometry.height}", "% integrator_name eventclip"]
    for key, value in (extra or {}).items():
        lines.append(f"% {key} {value}")
    lines.append("% end")
    return ("\n".join(lines) + "\n").encode("ascii")
