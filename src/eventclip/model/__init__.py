"""eventclip.model."""
