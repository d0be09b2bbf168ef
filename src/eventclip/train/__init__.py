"""eventclip.train."""
