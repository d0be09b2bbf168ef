"""The live page's web server (aiohttp, on its own thread and event loop): one page, server-sent events.

Why server-sent events: the page only listens, SSE is plain HTTP that every browser reconnects
by itself, and each tab is one long response. Each connection polls the
:class:`~eventclip.daemon.live.hub.LiveHub` at most ``fps`` times a second and sends what changed;
the PNGs are rendered there (in a worker thread), never in the pipeline.

Routes: ``/`` the page, ``/events`` the SSE stream (JSON per event), ``/state.json`` one full
update (for scripts and curl).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib import resources
from typing import Any

from eventclip.daemon.live.hub import Cursor, LiveHub
from eventclip.errors import ConfigError

log = logging.getLogger(__name__)

FPS = 5.0
"""Most updates per second sent to one page."""
KEEPALIVE_S = 2.0
"""A comment line is sent this often when nothing changed, so a closed tab is noticed."""


class LiveServer:
    """Serves ``hub`` on ``host:port`` (port 0: a free one; :attr:`url` says which) until :meth:`stop`."""

    def __init__(self, hub: LiveHub, host: str, port: int, fps: float = FPS) -> None:
        from eventclip._optional import require

        require("aiohttp", "http", "the live page (--http)")
        self.hub = hub
        self.host, self.port = host, port
        self.period_s = 1.0 / fps
        self.url = ""
        self._page = resources.files("eventclip.daemon.live").joinpath("page.html").read_bytes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="eventclipd-http", daemon=True)

    def start(self) -> str:
        """Bind and serve; return the page's URL. ConfigError when the address cannot be bound."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise ConfigError(f"http: cannot serve on {self.host}:{self.port}: {self._error}") from None
        log.info("live page on %s", self.url)
        return self.url

    def stop(self) -> None:
        """Close every page's stream and the listening socket (within about a second)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                log.error("live page server failed: %s", exc)

    async def _serve(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/state.json", self._state)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, shutdown_timeout=1.0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _index(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(body=self._page, content_type="text/html", charset="utf-8")

    async def _state(self, request: Any) -> Any:
        from aiohttp import web

        self.hub.attach()
        try:
            update = await asyncio.to_thread(self.hub.update, Cursor())
        finally:
            self.hub.detach()
        return web.json_response(update or {})

    async def _events(self, request: Any) -> Any:
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.hub.attach()
        cursor = Cursor()
        quiet_s = 0.0
        try:
            while not self._stop.is_set():
                update = await asyncio.to_thread(self.hub.update, cursor)
                if update is not None:
                    await response.write(b"data: " + json.dumps(update, separators=(",", ":")).encode() + b"\n\n")
                    quiet_s = 0.0
                elif quiet_s >= KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    quiet_s = 0.0
                try:
                    await asyncio.wait_for(self._stop.wait(), self.period_s)
                except asyncio.TimeoutError:
                    quiet_s += self.period_s
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the tab was closed
        finally:
            self.hub.detach()
        return response
