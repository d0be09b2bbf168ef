"""eventclip.daemon."""
