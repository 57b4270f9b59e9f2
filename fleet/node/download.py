"""Fetching a dispatched job's file from the fleet: streamed, size-bounded, checked against its sha256."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Protocol
from urllib.parse import urlsplit

import requests

from ..client import DownloadError, FleetClient, FleetRequestError
from ..protocol import JobRef

__all__ = ["DownloadError", "Fetcher", "HttpFetcher"]


class Fetcher(Protocol):
    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        """Download ``job``'s file into ``dest_dir``; return its path or raise :class:`DownloadError`."""


class HttpFetcher:
    """Downloads job files with the printer's bearer token, from the URL the dispatch command names."""

    def __init__(
        self,
        token: str,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        chunk_size: int = 64 * 1024,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.token = token
        self.max_bytes = max_bytes
        self.timeout = (connect_timeout, read_timeout)
        self.chunk_size = chunk_size
        self.session = session or requests.Session()

    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        parts = urlsplit(job.url)
        try:
            client = FleetClient(
                f"{parts.scheme}://{parts.netloc}", self.token, timeout=self.timeout, session=self.session
            )
        except FleetRequestError as exc:
            raise DownloadError(f"the job's file URL is not one this printer fetches: {exc}") from None
        return client.download(
            job.url,
            dest_dir,
            size=job.size,
            sha256=job.sha256,
            max_bytes=self.max_bytes,
            prefix=f"job-{job.job_id}-",
            chunk_size=self.chunk_size,
        )
