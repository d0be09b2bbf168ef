"""Pictures and videos of what the model saw and said (``eventclip classify --video/--frames-dir``)."""
