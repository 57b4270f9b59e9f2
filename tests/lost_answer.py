"""A TCP relay that loses the first answer: the request reaches the server, the client never hears back."""

from __future__ import annotations

import socket
import struct
import threading

from tests.tcp_server import TcpServer


class AnswerDropper(TcpServer):
    """A TCP relay to the fleet that tears down the first connection once the fleet starts to answer.

    So the first submission reaches the fleet and is committed, and its answer is lost: the way a
    dropped link or a killed client side loses it.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        super().__init__()

    def accepted(self, conn: socket.socket) -> None:
        self.connections += 1
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        drop = self.connections == 1
        threading.Thread(target=self._pump, args=(conn, upstream, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, conn, drop), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, drop: bool) -> None:
        try:
            while data := src.recv(65536):
                if drop:  # the answer has begun: cut the client's connection instead of passing it on
                    dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    dst.shutdown(socket.SHUT_RDWR)  # also wakes the other direction's pump
                    dst.close()
                    return
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
