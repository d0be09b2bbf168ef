"""Progress bars for the commands that take more than a few seconds, on a terminal only.

Why one helper: a bar helps a person at a terminal and is noise in a log, a pipe or CI, so every
long step asks here, and the answer is the same everywhere: a tqdm bar on stderr when stderr is a
terminal (and ``EVENTCLIP_NO_PROGRESS`` is unset), otherwise a stand-in that draws nothing. The
stand-in is not a disabled tqdm on purpose: any tqdm object starts tqdm's monitor thread, and a
library should not leave a thread behind (it would be copied into every fork of the process).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any


def enabled() -> bool:
    """True when bars are drawn: stderr is a terminal and ``EVENTCLIP_NO_PROGRESS`` is not set."""
    return sys.stderr.isatty() and not os.environ.get("EVENTCLIP_NO_PROGRESS")


class _Silent:
    """The part of tqdm's interface the commands use, drawing nothing."""

    def __init__(self, iterable: Iterable[Any] | None) -> None:
        self.iterable = iterable
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
        unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand: ``update``, ``set_description``, ``n``), or a silent
    stand-in off a terminal."""
    if not enabled():
        return _Silent(iterable)
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True)
