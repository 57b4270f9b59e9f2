"""The fleet's configuration: plain values, with defaults for an embedded single-machine setup."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

DEFAULT_PORT = 8080
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: A scrape token shorter than this is refused: it would be guessable.
MIN_METRICS_TOKEN_LENGTH = 16

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def default_data_dir() -> Path:
    """``$CROWDFAB_DATA_DIR``, else ``~/.crowdfab``."""
    env = os.environ.get("CROWDFAB_DATA_DIR")
    return Path(env) if env else Path.home() / ".crowdfab"


@dataclass(frozen=True)
class MetricsAccess:
    """Who may scrape ``/metrics``: the holder of a bearer token, clients from listed networks, or,
    with both set, only a client from those networks that holds the token. Neither: scraping is off."""

    #: Kept out of ``repr``, so a logged configuration never shows it.
    token: Optional[str] = field(default=None, repr=False)
    allow: tuple[Network, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.token is not None or bool(self.allow)

    @classmethod
    def of(cls, token: Optional[str] = None, allow: Union[str, Iterable[str], None] = None) -> MetricsAccess:
        """Checked values: :class:`ValueError`, naming what is wrong, for a short token or a bad network.

        ``allow`` is a list of networks (CIDR, or a bare address), or one string of them separated by
        commas or spaces: ``10.0.0.0/8, 192.168.1.5``.
        """
        if token is not None:
            token = token.strip()
            if len(token) < MIN_METRICS_TOKEN_LENGTH:
                raise ValueError(
                    f"the metrics scrape token must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
                    "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            if not token.isascii() or not token.isprintable() or " " in token:
                raise ValueError("the metrics scrape token must be printable ASCII without spaces")
        if isinstance(allow, str):
            allow = allow.replace(",", " ").split()
        networks = []
        for text in allow or ():
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{text.strip()!r} in the metrics allow-list is not an address or a network "
                    "(e.g. 10.0.0.0/8, 192.168.1.20, ::1)"
                ) from None
        return cls(token, tuple(networks))

    def allows_address(self, address: Optional[str]) -> bool:
        """Whether a client at ``address`` passes the allow-list (any address, without one)."""
        if not self.allow:
            return True
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 client on a dual-stack socket
        return any(ip in network for network in self.allow)


@dataclass(frozen=True)
class FleetConfig:
    data_dir: Path
    #: None: SQLite under ``data_dir``.
    database_url: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    threads: int = 8
    #: Reverse proxies in front of the fleet whose X-Forwarded-For/-Proto it believes (0: none, so a
    #: client cannot pose as another address; set it to the number of proxies that add the headers).
    trusted_proxies: int = 0
    #: Who may scrape ``/metrics`` (off unless a token or an allow-list is given).
    metrics: MetricsAccess = MetricsAccess()

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "files"
