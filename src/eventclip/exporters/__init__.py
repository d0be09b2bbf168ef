"""eventclip.exporters."""
