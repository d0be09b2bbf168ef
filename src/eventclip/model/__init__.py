"""eventclip.model: the event encoder (EventClip), loaders, the model package, prompts and heads.

Heavy imports (torch, open_clip) happen only when EventClip is used, so the daemon can read
packages, prompts and heads with numpy alone.
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
