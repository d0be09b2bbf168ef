"""The daemon's live page: :class:`~eventclip.daemon.live.hub.LiveHub` keeps what the page shows,
:mod:`eventclip.daemon.live.server` serves it (``eventclipd --http HOST:PORT``)."""
