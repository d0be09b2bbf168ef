"""eventclip.retrieval."""
