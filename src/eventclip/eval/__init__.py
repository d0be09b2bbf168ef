"""eventclip.eval."""
