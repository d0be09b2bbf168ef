"""Windows over event streams, event frames (numba on CPU, torch on CUDA) and model-input
preprocessing. (Events synthesised from ordinary video are a source: :mod:`eventclip.sensors.video_events`.)"""

from eventclip import _forksafe
from eventclip.frames.errors import EventOutsideGeometryError, FramesError, WindowConfigError
from eventclip.frames.preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, Representation

_forksafe.install()  # frames are counted with numba kernels, in pipeline threads: see eventclip._forksafe

__all__ = [
    "EventOutsideGeometryError",
    "FramesError",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "Representation",
    "WindowConfigError",
]
