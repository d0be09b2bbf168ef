"""systemd's notify protocol (``sd_notify``), spoken directly over the ``NOTIFY_SOCKET`` datagram socket.

Why our own: the protocol is one datagram of ``KEY=VALUE`` lines to an AF_UNIX socket whose path
is in ``$NOTIFY_SOCKET`` (a leading ``@`` means the Linux abstract namespace), so a dependency
(python-systemd, sdnotify) buys nothing. Outside systemd every call is a no-op.

Used for ``READY=1`` (after the model is loaded), ``STATUS=``, ``EXTEND_TIMEOUT_USEC=`` during
long engine builds, ``WATCHDOG=1`` keep-alives and ``STOPPING=1``.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends notify datagrams to systemd (or to whatever ``NOTIFY_SOCKET`` names, e.g. a test)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if path.startswith("@"):
            self.address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self.address = path
        self.watchdog_usec = self._watchdog_usec(env)
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @staticmethod
    def _watchdog_usec(env: dict[str, str]) -> int | None:
        """``WATCHDOG_USEC`` when it is meant for this process (``WATCHDOG_PID`` unset or ours)."""
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
            return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value if value > 0 else None

    @property
    def enabled(self) -> bool:
        """True when running under a notify socket."""
        return self._sock is not None

    def send(self, **fields: object) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; False when not under systemd or the send failed."""
        if self._sock is None:
            return False
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """The service is up: the model is loaded and the stream started."""
        return self.send(READY=1, STATUS=status) if status else self.send(READY=1)

    def status(self, text: str) -> bool:
        """A one-line human-readable state shown by ``systemctl status``."""
        return self.send(STATUS=text.replace("\n", " "))

    def extend_timeout(self, usec: int) -> bool:
        """Ask systemd for ``usec`` more µs before it gives up on start-up (long TensorRT builds)."""
        return self.send(EXTEND_TIMEOUT_USEC=int(usec))

    def watchdog(self) -> bool:
        """One keep-alive; send at least every ``watchdog_usec / 2``."""
        return self.send(WATCHDOG=1)

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.send(STOPPING=1)

    def close(self) -> None:
        """Close the socket. Safe to call twice."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
