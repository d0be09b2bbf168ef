"""One streaming pass over an event file that counts what ``eventclip info`` reports (bounded memory)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from eventclip.events import Geometry
from eventclip.io.base import PathLike


@dataclass
class Summary:
    """Counts and time span of one event file. Times in µs; ``rate_ev_per_s`` in events per second."""

    path: str
    format: str
    events: int
    width: int
    height: int
    t_first: int | None
    t_last: int | None
    on: int
    off: int
    triggers: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def duration_us(self) -> int:
        """t_last - t_first (0 for fewer than two distinct times)."""
        if self.t_first is None or self.t_last is None:
            return 0
        return self.t_last - self.t_first

    @property
    def rate_ev_per_s(self) -> float:
        """Mean event rate over the duration (0 when the duration is 0)."""
        return self.events / (self.duration_us * 1e-6) if self.duration_us > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-ready: the keys ``format, events, width, height, t_first, t_last, on, off`` and more."""
        out = asdict(self)
        out.pop("metadata")
        out["duration_us"] = self.duration_us
        out["rate_ev_per_s"] = self.rate_ev_per_s
        out["metadata"] = _jsonable(self.metadata)
        return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def summarize(path: PathLike, *, format: str | None = None, geometry: Geometry | tuple[int, int] | None = None
              ) -> Summary:
    """Read the file once, block by block, and count events, ON/OFF and the time span."""
    from eventclip.io import open_events

    n = on = 0
    t_first = t_last = None
    with open_events(path, format=format, geometry=geometry) as stream:
        for chunk in stream:
            ev = chunk.events
            if not len(ev):
                continue
            if t_first is None:
                t_first = int(ev["t"][0])
            t_last = int(ev["t"][-1])
            n += len(ev)
            on += int(np.count_nonzero(ev["p"]))
        triggers = getattr(stream.reader, "triggers", None)
        return Summary(str(path), stream.format, n, stream.geometry.width, stream.geometry.height, t_first, t_last,
                       on, n - on, 0 if triggers is None else len(triggers), dict(stream.metadata))
