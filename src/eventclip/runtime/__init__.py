"""eventclip.runtime."""
