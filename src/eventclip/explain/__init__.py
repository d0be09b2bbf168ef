"""eventclip.explain."""
