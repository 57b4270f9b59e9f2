"""The photo of the plate after a fleet job: taken from the webcam's snapshot URL, sent to the fleet.

A printer without a webcam has no snapshot URL and sends nothing. A webcam behind a login is asked as
OctoPrint's webcam settings say (basic, digest or a bearer token; or ``http://user:password@host/...``),
and its credentials never reach a log line or a message. A webcam that does not answer, answers
slowly, or answers with something that is no JPEG or PNG image, costs at most the timeouts and a line in
the log: the job's outcome never waits on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

from ..client import FleetClient, FleetRequestError
from ..http_protocol import MAX_SNAPSHOT_BYTES, image_type

log = logging.getLogger(__name__)


class SnapshotError(Exception):
    """The webcam gave no usable photo; the message says why, ``key`` and ``params`` say it for a user
    interface to word (``webcam_login``, ``webcam_status``, ``webcam_unreachable``, ``webcam_not_image``,
    ``webcam_too_large``)."""

    def __init__(self, message: str, key: str = "", **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class PlateProblem:
    """Why the last photo of the plate did not reach the fleet, for the owner (not only the log)."""

    job_id: int
    text: str
    key: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "text": self.text, "key": self.key, "params": dict(self.params)}


#: How a webcam's snapshot URL wants to be asked (OctoPrint's classic webcam ``snapshotAuth``).
AUTH_KINDS = ("none", "basic", "digest", "bearer")


@dataclass(frozen=True)
class WebcamLogin:
    """The snapshot URL's login: ``basic`` or ``digest`` with a user name and password, or ``bearer``
    with a token. Its ``repr`` shows the kind only."""

    kind: str
    username: str = ""
    password: str = ""
    token: str = ""

    def __post_init__(self) -> None:
        if self.kind not in AUTH_KINDS[1:]:
            raise ValueError(
                f"the webcam login must be one of {', '.join(AUTH_KINDS[1:])}, not {self.kind!r}"
            )

    def __repr__(self) -> str:
        return f"WebcamLogin(kind={self.kind!r})"

    def auth(self) -> Optional[AuthBase]:
        if self.kind == "basic":
            return HTTPBasicAuth(self.username, self.password)
        if self.kind == "digest":
            return HTTPDigestAuth(self.username, self.password)
        return None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.kind == "bearer" else {}


def shown_url(url: str) -> str:
    """The URL without the user name and password it may carry: what logs and messages show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class Webcam:
    """Takes a photo from a webcam's snapshot URL (``http://…``), bounded in time and size, logged in as
    ``login`` says (a user name and password in the URL are sent as basic authentication too)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = MAX_SNAPSHOT_BYTES,
        session: Optional[requests.Session] = None,
        login: Optional[WebcamLogin] = None,
        verify_tls: bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"the webcam snapshot URL must start with http:// or https://, not {shown_url(url)!r}"
            )
        self.url = url
        #: The URL as logs and messages show it: no credentials.
        self.shown = shown_url(url)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.session = session or requests.Session()
        self.login = login
        #: False only when the owner turned OctoPrint's "validate SSL" off for a self-signed webcam.
        self.verify_tls = verify_tls

    def snapshot(self) -> tuple[bytes, str]:
        """The photo and its media type, or :class:`SnapshotError`."""
        login = self.login
        try:
            with self.session.get(
                self.url,
                timeout=self.timeout_s,
                stream=True,
                auth=login.auth() if login else None,
                headers=login.headers() if login else None,
                verify=self.verify_tls,
            ) as response:
                if response.status_code in (401, 403):
                    raise SnapshotError(
                        f"the webcam at {self.shown} refused the login (HTTP {response.status_code}): check "
                        "the snapshot URL's authentication in OctoPrint's webcam settings",
                        "webcam_login",
                        status=response.status_code,
                    )
                if response.status_code != 200:
                    raise SnapshotError(
                        f"the webcam at {self.shown} answered HTTP {response.status_code}",
                        "webcam_status",
                        status=response.status_code,
                    )
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise SnapshotError(
                            f"the webcam's photo is larger than {self.max_bytes} bytes",
                            "webcam_too_large",
                            max=self.max_bytes,
                        )
        except requests.RequestException as exc:
            # requests' own words may quote the URL it was given, credentials and all.
            words = str(exc).replace(self.url, self.shown)
            raise SnapshotError(
                f"could not reach the webcam at {self.shown}: {words}", "webcam_unreachable"
            ) from None
        media_type = image_type(bytes(data))
        if media_type is None:
            raise SnapshotError(
                f"the webcam at {self.shown} sent something that is no JPEG or PNG image", "webcam_not_image"
            )
        return bytes(data), media_type


class PlateReporter:
    """After each fleet job, sends the photo of the plate to the fleet (the printer's own token)."""

    def __init__(self, webcam: Webcam, client: FleetClient, printer_id: str) -> None:
        self.webcam = webcam
        self.client = client
        self.printer_id = printer_id
        #: Why the last photo did not reach the fleet (None once one does): the owner's UI shows it.
        self.problem: Optional[PlateProblem] = None

    def after_job(self, job_id: int) -> bool:
        """Take and send the photo; True when the fleet has it. Failures are logged and kept in
        :attr:`problem`, never raised."""
        try:
            image, media_type = self.webcam.snapshot()
            self.client.send_snapshot(self.printer_id, job_id, image, media_type)
        except SnapshotError as exc:
            log.warning("no photo of the plate for job %d: %s", job_id, exc)
            self.problem = PlateProblem(job_id, str(exc), exc.key, exc.params)
            return False
        except FleetRequestError as exc:
            log.warning("no photo of the plate for job %d: %s", job_id, exc)
            self.problem = PlateProblem(job_id, str(exc), "fleet_refused", {"status": exc.status or 0})
            return False
        log.info("sent the photo of the plate after job %d (%d bytes)", job_id, len(image))
        self.problem = None
        return True

    def close(self) -> None:
        self.webcam.session.close()
        self.client.close()
