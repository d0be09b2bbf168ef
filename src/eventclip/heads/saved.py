"""Heads stored in a model package (``heads/<name>.npz``), rebuilt by the ``kind`` their meta records.

A head a package can hold registers in :data:`~eventclip.heads.base.HEADS` with the capability
``fitted`` and has ``to_arrays()`` / ``from_arrays()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.heads.base import HEADS
from eventclip.heads.probe import LinearProbe
from eventclip.heads.reference_anomaly import ReferenceAnomaly
from eventclip.heads.tip import TipAdapter
from eventclip.model.package import read_head

SavedHead = LinearProbe | TipAdapter | ReferenceAnomaly


def saved_kinds() -> tuple[str, ...]:
    """Head kinds a package can store (the ``fitted`` ones), by the ``kind`` written into each head's meta."""
    return tuple(k for k in HEADS.names() if HEADS.capabilities(k).get("fitted"))


def head_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> SavedHead:
    """Rebuild a saved head (probe, tip or reference anomaly) from its arrays and meta."""
    kind = meta.get("kind")
    if kind not in saved_kinds():
        raise ConfigError(f"unknown head kind {kind!r}; expected one of {', '.join(saved_kinds())}")
    return HEADS[kind].from_arrays(arrays, meta)


def load_head(folder: str | Path, name: str) -> SavedHead:
    """The head saved under ``name`` in a package, rebuilt (hash-checked)."""
    return head_from_arrays(*read_head(folder, name))
