"""eventclip.model: the event encoder (EventClip), its tokenizer, loaders and the model package.

Heavy imports (torch, open_clip) happen only when EventClip is used, so the daemon can read
a package's card and heads with numpy alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EventClip", "create_eventclip"]


def __getattr__(name: str) -> Any:
    if name == "EventClip":
        from eventclip.model.clip import EventClip

        return EventClip
    if name == "create_eventclip":
        from eventclip.model.clip import create_eventclip

        return create_eventclip
    raise AttributeError(name)
