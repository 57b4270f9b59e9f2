"""A printer's network cut in mid-print for longer than its keepalive: the fleet marks it offline and
holds its job as unknown (never giving it to another printer), the print finishes on the printer, and
when the link returns the node's journalled ``job_done`` settles the job; the printer then awaits its
bed clear. The five-minute version is ``bench/soak_network_cut.py``.

Also here: the proxy itself (:mod:`tests.netproxy`) does what the scenario relies on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from tests.brokers import wait_until
from tests.faults.network_cut import run_network_cut
from tests.netproxy import NetProxy
from tests.tcp_server import TcpServer

CUT_S = 30.0
KEEPALIVE_S = 5


def test_a_printer_cut_off_mid_print_finishes_and_the_fleet_settles_the_job_when_it_returns(tmp_path):
    report = run_network_cut(tmp_path, cut_s=CUT_S, keepalive_s=KEEPALIVE_S, print_s=10.0)
    print("\n" + "\n".join(report.lines()))
    assert report.settled_after_restore is not None and report.settled_after_restore <= 15


class Echo(TcpServer):
    """A TCP server that echoes what it gets, on a free port."""

    def accepted(self, conn: socket.socket) -> None:
        threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture
def echo_proxy():
    echo = Echo()
    proxy = NetProxy("127.0.0.1", echo.port).start()
    yield proxy
    proxy.close()
    echo.server.close()


def test_the_proxy_holds_bytes_while_cut_delivers_them_after_and_resets_on_demand(echo_proxy):
    client = socket.create_connection(("127.0.0.1", echo_proxy.port), timeout=5)
    client.sendall(b"one")
    assert client.recv(10) == b"one"

    echo_proxy.cut()
    client.sendall(b"two")  # accepted by our own kernel, as on a dead wireless link
    client.settimeout(0.5)
    with pytest.raises(socket.timeout):
        client.recv(10)
    late = socket.create_connection(("127.0.0.1", echo_proxy.port), timeout=5)  # accepted, carried nowhere
    late.sendall(b"three")
    late.settimeout(0.5)
    with pytest.raises(socket.timeout):
        late.recv(10)

    echo_proxy.restore()
    client.settimeout(5)
    late.settimeout(5)
    assert client.recv(10) == b"two"
    assert late.recv(10) == b"three"

    assert echo_proxy.reset() == 2
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        client.sendall(b"x")
        client.recv(10)
    client.close()
    late.close()


def test_the_proxy_throttles_to_the_rate_it_is_given(echo_proxy):
    echo_proxy.throttle(100_000)
    client = socket.create_connection(("127.0.0.1", echo_proxy.port), timeout=10)
    payload = b"x" * 50_000
    started = time.monotonic()
    client.sendall(payload)
    got = 0
    while got < len(payload):
        got += len(client.recv(65536))
    elapsed = time.monotonic() - started
    # 50 kB each way at 100 kB/s: about half a second per direction, pipelined.
    assert 0.4 <= elapsed <= 5, elapsed
    client.close()
    wait_until(lambda: echo_proxy.open_connections == 0, 5, "the proxy to drop the closed connection")
