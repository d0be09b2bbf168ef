"""eventclip: open-vocabulary recognition and anomaly scores for event cameras, live.

Data flows one way: sensors -> frames.windows -> frames.accumulate -> runtime backend ->
model heads -> daemon publisher. Each stage is importable and usable alone.
"""

from eventclip.events import EVENT_DTYPE, EventChunk, Geometry, make_events

__version__ = "0.1.0"

__all__ = ["EVENT_DTYPE", "EventChunk", "Geometry", "make_events", "__version__"]
