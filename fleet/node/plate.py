"""The photo of the plate after a fleet job: taken from the webcam's snapshot URL, sent to the fleet.

A printer without a webcam has no snapshot URL and sends nothing. A webcam that does not answer, answers
slowly, or answers with something that is no JPEG or PNG image, costs at most the timeouts and a line in
the log: the job's outcome never waits on it.
"""

from __future__ import annotations

import logging
from typing import Optional

import requests

from ..client import FleetClient, FleetRequestError
from ..http_protocol import MAX_SNAPSHOT_BYTES, image_type

log = logging.getLogger(__name__)


class SnapshotError(Exception):
    """The webcam gave no usable photo; the message says why."""


class Webcam:
    """Takes a photo from a webcam's snapshot URL (``http://…``), bounded in time and size."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = MAX_SNAPSHOT_BYTES,
        session: Optional[requests.Session] = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the webcam snapshot URL must start with http:// or https://, not {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.session = session or requests.Session()

    def snapshot(self) -> tuple[bytes, str]:
        """The photo and its media type, or :class:`SnapshotError`."""
        try:
            with self.session.get(self.url, timeout=self.timeout_s, stream=True) as response:
                if response.status_code != 200:
                    raise SnapshotError(f"the webcam at {self.url} answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise SnapshotError(f"the webcam's photo is larger than {self.max_bytes} bytes")
        except requests.RequestException as exc:
            raise SnapshotError(f"could not reach the webcam at {self.url}: {exc}") from None
        media_type = image_type(bytes(data))
        if media_type is None:
            raise SnapshotError(f"the webcam at {self.url} sent something that is no JPEG or PNG image")
        return bytes(data), media_type


class PlateReporter:
    """After each fleet job, sends the photo of the plate to the fleet (the printer's own token)."""

    def __init__(self, webcam: Webcam, client: FleetClient, printer_id: str) -> None:
        self.webcam = webcam
        self.client = client
        self.printer_id = printer_id

    def after_job(self, job_id: int) -> bool:
        """Take and send the photo; True when the fleet has it. Failures are logged, never raised."""
        try:
            image, media_type = self.webcam.snapshot()
            self.client.send_snapshot(self.printer_id, job_id, image, media_type)
        except (SnapshotError, FleetRequestError) as exc:
            log.warning("no photo of the plate for job %d: %s", job_id, exc)
            return False
        log.info("sent the photo of the plate after job %d (%d bytes)", job_id, len(image))
        return True

    def close(self) -> None:
        self.webcam.session.close()
        self.client.close()
