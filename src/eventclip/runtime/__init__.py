"""Inference backends behind one small interface; ``select`` picks the fastest available.

Importing this package imports neither torch nor onnxruntime: each backend module loads its own
engine when created (see docs/deploy.md). ``BACKENDS`` lists them (see :mod:`eventclip.plugins`).
"""

from eventclip.runtime.base import BACKENDS, Backend, BackendError, Bundle, Choice, create, find_bundle, select

__all__ = ["BACKENDS", "Backend", "BackendError", "Bundle", "Choice", "create", "find_bundle", "select"]
