"""A TCP listener on a free local port for the tests' own stand-in servers (an echo, a lossy relay)."""

from __future__ import annotations

import socket
import threading


class TcpServer:
    """Accepts connections on 127.0.0.1 until closed and passes each to :meth:`accepted`, in order, on
    one thread: a subclass starts its own threads for the work, and may count connections safely."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted(conn)

    def accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.close()
