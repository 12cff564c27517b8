"""A fault-injecting TCP proxy for the reliability tests: 127.0.0.1:<port> -> a target.

It stands between a subprocess and the shared PostgreSQL/Redis so a test can take the service
"down" for that subprocess alone, without stopping what the rest of the suite uses (toxiproxy
and tc netem are not available here, see docs/reliability.md section 5). Modes:

- ``pass``: bytes flow both ways.
- ``blackhole``: like a SIGSTOPped server: new connections are accepted and never answered,
  and open connections stop moving bytes (nothing is lost: they resume on ``pass``).
- ``refuse``: like a stopped server: new connections are closed at once, open ones are cut.

Threads only, all daemon; ``stop()`` closes every socket it opened and joins its threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["pass", "blackhole", "refuse"]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self.accepted = 0
        self._changed = threading.Condition()
        self._stopped = False
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]

    def url_for(self, url: str) -> str:
        """`url` (postgres://… or redis://…) with its host:port replaced by this proxy's."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def start(self) -> FaultProxy:
        self._spawn(self._accept_loop)
        return self

    def set_mode(self, mode: Mode) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()
        if mode == "refuse":
            for sock in list(self._sockets):
                self._close(sock)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._listener.close()
        for sock in list(self._sockets):
            self._close(sock)
        for thread in self._threads:
            thread.join(timeout=2)

    # --- internals ------------------------------------------------------------------------

    def _spawn(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _close(self, sock: socket.socket) -> None:
        self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _wait_for_pass(self) -> bool:
        """Block while blackholed; False when the proxy stopped or refuses."""
        with self._changed:
            while self.mode == "blackhole" and not self._stopped:
                self._changed.wait(0.1)
            return self.mode == "pass" and not self._stopped

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._sockets.add(client)
            if self.mode == "refuse":
                self._close(client)
                continue
            self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        # A blackholed new connection waits here: accepted, never answered.
        if not self._wait_for_pass():
            self._close(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._sockets.add(upstream)
        self._spawn(self._pump, client, upstream)
        self._pump(upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                # Blackholed: hold the bytes (a stopped server's peer sees silence).
                if not self._wait_for_pass():
                    break
                sink.sendall(data)
        except OSError:
            pass
        self._close(source)
        self._close(sink)
