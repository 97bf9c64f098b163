"""A TCP server that accepts connections and never says a word."""

from __future__ import annotations

import socket
import threading


class SilentServer:
    """Accepts TCP connections and never says a word: a black-holed server as far as
    any client's protocol is concerned. ``conns`` holds what it accepted."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()
