"""Windows over event streams, event frames (numba on CPU, torch on CUDA), model-input
preprocessing, and events synthesised from ordinary video."""

from eventclip.frames.errors import EventOutsideGeometryError, FramesError, VideoError, WindowConfigError
from eventclip.frames.preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, Representation

__all__ = [
    "EventOutsideGeometryError",
    "FramesError",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "Representation",
    "VideoError",
    "WindowConfigError",
]
