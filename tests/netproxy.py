"""A small TCP proxy for fault tests and soaks: cut a connection the way Wi-Fi drops, throttle it, reset it.

::

    proxy = NetProxy("127.0.0.1", broker.port).start()   # listens on proxy.port
    proxy.aim("127.0.0.1", other_port)                      # new connections go there from now on
    ...                                                     # the client connects to proxy.port
    proxy.cut()        # nothing moves either way; no socket is closed, nobody is told
    proxy.restore()    # what was held back is delivered, and forwarding goes on
    proxy.reset()      # every open connection is torn down with a TCP reset (RST)
    proxy.throttle(64 * 1024)   # at most this many bytes a second each way, per connection

While cut, the proxy behaves like a dropped wireless link: both ends still think the connection is up,
what they send is accepted by their own kernel and goes nowhere, and a new connection is accepted but
not carried anywhere. A side that gives up and closes during the cut is not noticed by the other side
until the link is restored (a FIN cannot cross a dead link either). After ``restore()`` the data held
back is delivered in order, as TCP's retransmissions would deliver it, unless an end has given up.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Optional

from tests.brokers import HOST

_CHUNK = 16 * 1024


class NetProxy:
    """Forwards every connection made to ``port`` (on ``HOST``) to ``target_host:target_port``."""

    def __init__(self, target_host: str = HOST, target_port: int = 0, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        if target_port:
            self.aim(target_host, target_port)
        self._listener = socket.create_server((HOST, port))
        self.port: int = self._listener.getsockname()[1]
        self._link_up = threading.Event()
        self._link_up.set()
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._rate: Optional[float] = None
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, name=f"netproxy-{self.port}", daemon=True)
        #: Connections accepted so far (a reconnecting client shows here).
        self.accepted = 0
        #: When the link was last cut and restored (time.monotonic()), for reports.
        self.cut_at: Optional[float] = None
        self.restored_at: Optional[float] = None

    @property
    def url(self) -> str:
        """``http://`` URL of the proxy, for a proxied HTTP server."""
        return f"http://{HOST}:{self.port}"

    def aim(self, target_host: str, target_port: int) -> None:
        """Carry new connections to this address (a proxy may be made before what it fronts exists)."""
        if not 0 < target_port < 65536:
            raise ValueError(f"target_port must be 1-65535, got {target_port}")
        self.target = (target_host, target_port)

    def start(self) -> NetProxy:
        self._accepter.start()
        return self

    # -- faults ------------------------------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        return not self._link_up.is_set()

    def cut(self) -> None:
        """Stop carrying bytes both ways, on open and new connections alike; close nothing."""
        self.cut_at = time.monotonic()
        self._link_up.clear()

    def restore(self) -> None:
        """Carry bytes again, held-back ones first."""
        self.restored_at = time.monotonic()
        self._link_up.set()

    def reset(self) -> int:
        """Tear down every open connection with a TCP reset; returns how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.reset()
        return len(pairs)

    def throttle(self, bytes_per_s: Optional[float]) -> None:
        """Carry at most ``bytes_per_s`` each way per connection (None: as fast as possible)."""
        if bytes_per_s is not None and not bytes_per_s > 0:
            raise ValueError(f"bytes_per_s must be > 0 or None, got {bytes_per_s}")
        self._rate = bytes_per_s

    @property
    def open_connections(self) -> int:
        with self._lock:
            self._pairs = [pair for pair in self._pairs if not pair.finished]
            return len(self._pairs)

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed.set()
        self._link_up.set()  # let held pumps run out
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()
        self._accepter.join(5)

    def __enter__(self) -> NetProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def _accept(self) -> None:
        self._listener.settimeout(0.2)  # so close() is noticed: it does not wake a blocked accept()
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.accepted += 1
            threading.Thread(target=self._open, args=(client,), name="netproxy-open", daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        # A connection made while the link is down is carried once it is back (like a SYN retried).
        self._link_up.wait()
        if self._closed.is_set() or client.fileno() < 0:
            client.close()
            return
        try:
            if not self.target[1]:
                raise OSError("the proxy is not aimed anywhere yet")
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _hard_close(client)
            return
        upstream.settimeout(None)
        pair = _Pair(client, upstream, self)
        with self._lock:
            self._pairs.append(pair)
        pair.start()


class _Pair:
    """One proxied connection: a pump thread each way."""

    def __init__(self, client: socket.socket, upstream: socket.socket, proxy: NetProxy) -> None:
        self.sockets = (client, upstream)
        self.proxy = proxy
        self._done = 0
        self._lock = threading.Lock()
        self._reset = threading.Event()
        for sock in self.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._done >= 2 or self._reset.is_set()

    def start(self) -> None:
        client, upstream = self.sockets
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), name="netproxy-pump", daemon=True).start()

    def reset(self) -> None:
        # A blocked recv() keeps its socket alive through close(); shutting the read side wakes it, and
        # the pump then closes with SO_LINGER 0, which is what sends the reset.
        self._reset.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)

    def _link_up(self) -> bool:
        """Wait while the link is cut; False when the connection was reset meanwhile."""
        while not self.proxy._link_up.wait(0.05):
            if self._reset.is_set():
                return False
        return not self._reset.is_set()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(_CHUNK)
                # A cut holds what was read (and, in the kernel's buffers, what comes after it).
                if not self._link_up():
                    break
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    break
                self._send(dst, data)
        except OSError:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with self._lock:
                self._done += 1
                last = self._done == 2
            if self._reset.is_set():
                for sock in self.sockets:
                    _hard_close(sock)
            elif last:
                for sock in self.sockets:
                    sock.close()

    def _send(self, dst: socket.socket, data: bytes) -> None:
        rate = self.proxy._rate
        if rate is None:
            dst.sendall(data)
            return
        # Throttled: small slices, each followed by the pause its size costs at the rate.
        piece = max(1, min(len(data), int(rate / 20)))
        for start in range(0, len(data), piece):
            if not self._link_up():
                raise OSError("connection reset by the proxy")
            chunk = data[start : start + piece]
            dst.sendall(chunk)
            time.sleep(len(chunk) / rate)


def _hard_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP reset, not an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
