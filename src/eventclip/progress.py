"""Progress bars for the commands that take more than a few seconds, on a terminal only.

Why one helper: a bar helps a person at a terminal and is noise in a log, a pipe or CI, so every
long step asks here, and the answer is the same everywhere: a tqdm bar on stderr when stderr is a
terminal (and ``EVENTCLIP_NO_PROGRESS`` is unset), otherwise a bar that draws nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any


def enabled() -> bool:
    """True when bars are drawn: stderr is a terminal and ``EVENTCLIP_NO_PROGRESS`` is not set."""
    return sys.stderr.isatty() and not os.environ.get("EVENTCLIP_NO_PROGRESS")


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
        unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand: ``update``, ``set_description``), silent off a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True,
                disable=not enabled())
