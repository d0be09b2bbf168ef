"""Windows over event streams, event frames (numba on CPU, torch on CUDA), model-input
preprocessing, and events synthesised from ordinary video."""

from eventclip import _forksafe
from eventclip.frames.errors import EventOutsideGeometryError, FramesError, VideoError, WindowConfigError
from eventclip.frames.preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, Representation

_forksafe.install()  # frames are counted with numba kernels, in pipeline threads: see eventclip._forksafe

__all__ = [
    "EventOutsideGeometryError",
    "FramesError",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "Representation",
    "VideoError",
    "WindowConfigError",
]
