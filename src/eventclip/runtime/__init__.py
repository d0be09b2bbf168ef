"""Inference backends behind one small interface; ``select`` picks the fastest available.

Importing this package imports neither torch nor onnxruntime: each backend module loads its own
engine when created (see docs/deploy.md).
"""

from eventclip.runtime.base import BACKEND_NAMES, Backend, BackendError, Bundle, Choice, create, find_bundle, select

__all__ = ["BACKEND_NAMES", "Backend", "BackendError", "Bundle", "Choice", "create", "find_bundle", "select"]
