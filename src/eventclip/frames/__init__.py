"""eventclip.frames."""
