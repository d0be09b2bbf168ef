"""Heads stored in a model package (``heads/<name>.npz``), rebuilt by the ``kind`` their meta records.

A fitted head class declares ``kind`` and ``to_arrays()`` / ``from_arrays()``; listing it in
:data:`SAVED_HEADS` is what lets a package hold it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eventclip.errors import ConfigError
from eventclip.heads.anomaly import ReferenceAnomaly
from eventclip.heads.few_shot import LinearProbe, TipAdapter
from eventclip.model.package import read_head

SavedHead = LinearProbe | TipAdapter | ReferenceAnomaly

SAVED_HEADS = {c.kind: c for c in (LinearProbe, TipAdapter, ReferenceAnomaly)}
"""Head kinds a package can store, by the ``kind`` written into each head's meta."""


def head_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> SavedHead:
    """Rebuild a saved head (probe, tip or reference anomaly) from its arrays and meta."""
    kind = meta.get("kind")
    if kind not in SAVED_HEADS:
        raise ConfigError(f"unknown head kind {kind!r}; expected one of {sorted(SAVED_HEADS)}")
    return SAVED_HEADS[kind].from_arrays(arrays, meta)


def load_head(folder: str | Path, name: str) -> SavedHead:
    """The head saved under ``name`` in a package, rebuilt (hash-checked)."""
    return head_from_arrays(*read_head(folder, name))
