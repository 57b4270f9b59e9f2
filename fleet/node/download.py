"""Fetching a dispatched job's file from the fleet: streamed, size-bounded, checked against its sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Optional, Protocol

import requests

from ..protocol import JobRef


class DownloadError(Exception):
    """The file could not be fetched or is not the file the fleet described; the message says which."""


class Fetcher(Protocol):
    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        """Download ``job``'s file into ``dest_dir``; return its path or raise :class:`DownloadError`."""


class HttpFetcher:
    """Downloads job files with the printer's bearer token."""

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
        if job.size > self.max_bytes:
            limit = self.max_bytes
            raise DownloadError(f"file of {job.size} bytes is over this printer's {limit}-byte limit")
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"job-{job.job_id}-", suffix=".part", dir=dest_dir)
        path = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, self._get(job.url) as response:
                for chunk in response.iter_content(self.chunk_size):
                    size += len(chunk)
                    if size > job.size:
                        raise DownloadError(f"server sent more than the announced {job.size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if size != job.size:
                raise DownloadError(f"got {size} bytes, the fleet announced {job.size}")
            if digest.hexdigest() != job.sha256:
                raise DownloadError("sha256 of the downloaded file does not match the fleet's")
            return path
        except requests.RequestException as exc:
            path.unlink(missing_ok=True)
            raise DownloadError(f"download failed: {exc}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _get(self, url: str) -> requests.Response:
        response = self.session.get(
            url,
            headers={"Authorization": f"Bearer {self.token}"},
            stream=True,
            timeout=self.timeout,
            allow_redirects=False,
        )
        if response.status_code != 200:
            response.close()
            raise DownloadError(f"fleet answered HTTP {response.status_code} for the job file")
        return response
