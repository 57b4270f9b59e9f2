"""The one HTTP client of the fleet: enroll a printer, download a job's file, submit and list jobs.

The node (:mod:`fleet.node`), the OctoPrint plugin and ``crowdfab-fleet``'s remote commands all talk to
the fleet through :class:`FleetClient`; paths and payloads come from :mod:`fleet.http_protocol`. It needs
only requests, so a Raspberry Pi runs it with the base install. Every failure is a
:class:`FleetRequestError` (or a :class:`DownloadError` for a job file) with a message for a person.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import requests

from .http_protocol import (
    ENROLL,
    GCODE_MEDIA_TYPE,
    IDEMPOTENCY_KEY,
    JOBS,
    TOKENS,
    EnrollmentAnswer,
    EnrollRequest,
    JobSubmission,
    Unfit,
    decode_unfit,
    job_snapshot_path,
    printer_spool_path,
    quote_idempotency_key,
    unfit_path,
)
from .protocol import Capabilities, ProtocolError

Timeout = tuple[float, float]


class FleetRequestError(Exception):
    """The fleet could not be reached or refused; the message says which and why.

    ``status`` is the fleet's HTTP status when it answered with a refusal (4xx), else None: the request
    may be worth sending again.
    """

    def __init__(self, message: str, status: Optional[int] = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        #: The ``details`` of the fleet's error answer (such as the plates of a sliced 3MF), if any.
        self.details = details


class DownloadError(Exception):
    """A job's file could not be fetched or is not the file the fleet described; the message says which."""


def read_enrollment(data: Any) -> EnrollmentAnswer:
    """The fleet's enrollment answer as typed values; anything malformed is a :class:`FleetRequestError`."""
    try:
        return EnrollmentAnswer.from_json(data)
    except ProtocolError as exc:
        raise FleetRequestError(f"the fleet's enrollment answer is not usable: {exc.message}") from None


class FleetClient:
    """One fleet at ``base_url``, as one caller (a member's or a printer's ``token``, or nobody).

    ``retries`` and ``backoff_s`` govern calls that are safe to repeat (a submission carries its
    Idempotency-Key): after no answer or a server failure, wait ``backoff_s``, then twice that, and so
    on up to ``max_backoff_s``, and send it again. A refusal (4xx) is never sent again.
    """

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        *,
        timeout: Timeout = (10.0, 600.0),
        retries: int = 2,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise FleetRequestError(f"fleet_url must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._own_session = session is None
        self.session = session or requests.Session()
        self._sleep = sleep

    def close(self) -> None:
        """Close the connections this client opened (a session given to it stays the giver's)."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """An API path (from :mod:`fleet.http_protocol`) on this fleet."""
        return self.base_url + path

    # -- calls ------------------------------------------------------------------------------------

    def request_json(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """One call whose answer must have status ``expect`` and a JSON body; that body."""
        url = self.url(path)
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise FleetRequestError(f"could not reach the fleet at {url}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != expect:
            message = data.get("message") if isinstance(data, dict) else None
            refused = response.status_code if 400 <= response.status_code < 500 else None
            raise FleetRequestError(
                f"the fleet answered HTTP {response.status_code}: {message or response.reason}",
                refused,
                data.get("details") if isinstance(data, dict) else None,
            )
        if data is None:
            raise FleetRequestError(f"the fleet's answer to {method.upper()} {path} is not JSON")
        return data

    def sign_in(
        self,
        label: str,
        *,
        name: Optional[str] = None,
        password: Optional[str] = None,
        link_code: Optional[str] = None,
    ) -> str:
        """A new token named ``label`` for the member with this name and password, or this link code.

        Never retried: a wrong password counts against the member's sign-in limit.
        """
        sent: dict[str, str] = {"label": label}
        if link_code is not None:
            sent["link_code"] = link_code
        if name is not None:
            sent["name"] = name
        if password is not None:
            sent["password"] = password
        answer = self.request_json("post", TOKENS, expect=201, json=sent)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise FleetRequestError("the fleet's answer to the sign-in has no token")
        return token

    def send_snapshot(self, printer_id: str, job_id: int, image: bytes, media_type: str) -> None:
        """Send the photo of the plate taken after job ``job_id`` (the printer's token); sent once."""
        path = job_snapshot_path(printer_id, job_id)
        headers = {"Content-Type": media_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.put(self.url(path), data=image, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise FleetRequestError(f"could not reach the fleet at {self.url(path)}: {exc}") from None
        if response.status_code != 204:
            try:
                message = response.json().get("message")
            except (ValueError, AttributeError):
                message = None
            refused = response.status_code if 400 <= response.status_code < 500 else None
            raise FleetRequestError(
                f"the fleet answered HTTP {response.status_code}: {message or response.reason}", refused
            )

    def unfit(self, printer_id: str) -> tuple[Unfit, ...]:
        """The waiting jobs no printer can take that this printer cannot either (the printer's token)."""
        try:
            return decode_unfit(self.request_json("get", unfit_path(printer_id)))
        except ProtocolError as exc:
            raise FleetRequestError(f"the fleet's answer about unfit jobs is malformed: {exc}") from None

    def printer_spool(self, printer_id: str) -> Any:
        """The spool on this printer and the spools on the shelves (the printer's token), as JSON."""
        return self.request_json("get", printer_spool_path(printer_id))

    def load_spool(self, printer_id: str, spool_id: int) -> Any:
        """Load a shelf spool on this printer (the printer's token); the printer's spools after it."""
        return self.request_json("put", printer_spool_path(printer_id), json={"spool_id": spool_id})

    def unload_spool(self, printer_id: str) -> Any:
        """Take the spool off this printer (the printer's token); the printer's spools after it."""
        return self.request_json("delete", printer_spool_path(printer_id))

    def enroll(self, code: str, name: str, capabilities: Capabilities) -> EnrollmentAnswer:
        """Trade a one-time enrollment code for this printer's id, HTTP token and broker login.

        Sent once: the code is spent by the first request the fleet sees, so a retry could only fail.
        """
        body = EnrollRequest(code, name, capabilities).to_json()
        return read_enrollment(self.request_json("post", ENROLL, json=body, expect=201))

    def submit_job(
        self,
        path: Path,
        submission: JobSubmission,
        *,
        filename: Optional[str] = None,
        key: Optional[str] = None,
        on_bytes: Optional[Callable[[int], None]] = None,
        on_retry: Optional[Callable[[FleetRequestError], None]] = None,
    ) -> Any:
        """``POST JOBS`` with the file streamed from disk; the fleet's answer (``jobs`` and ``analysis``).

        The submission carries an Idempotency-Key (``key``, else a fresh one) and is sent again with it
        after no answer or a server failure: the fleet queues it once however many tries reach it.
        ``on_bytes`` hears how much of the file each read sent; ``on_retry`` hears of each new try.
        """
        headers = {IDEMPOTENCY_KEY: quote_idempotency_key(key or uuid.uuid4().hex)}

        def send() -> Any:
            body = MultipartUpload(path, submission.form(), filename or path.name, on_bytes)
            try:
                sent = {**headers, "Content-Type": body.content_type}
                return self.request_json("post", JOBS, expect=201, data=body, headers=sent)
            finally:
                body.close()

        return self.with_retries(send, on_retry)

    def with_retries(
        self, call: Callable[[], Any], on_retry: Optional[Callable[[FleetRequestError], None]]
    ) -> Any:
        """``call()``, again after a failure that was not a refusal, at most ``retries`` more times."""
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return call()
            except FleetRequestError as exc:
                if exc.status is not None or attempt == self.retries:
                    raise
                if on_retry is not None:
                    on_retry(exc)
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def download(
        self,
        url: str,
        dest_dir: Path,
        *,
        size: int,
        sha256: str,
        max_bytes: int,
        prefix: str = "download-",
        chunk_size: int = 64 * 1024,
    ) -> Path:
        """Stream the file at ``url`` into ``dest_dir``; its path once it is ``size`` bytes with ``sha256``.

        Bounded: a file announced over ``max_bytes``, or a server sending more than announced, is cut
        off. Nothing is left behind on failure. ``url`` is absolute: the fleet names it in its command.
        """
        if size > max_bytes:
            raise DownloadError(f"file of {size} bytes is over this printer's {max_bytes}-byte limit")
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=dest_dir)
        path = Path(name)
        try:
            digest = hashlib.sha256()
            got = 0
            with os.fdopen(fd, "wb") as out, self._get_file(url) as response:
                for chunk in response.iter_content(chunk_size):
                    got += len(chunk)
                    if got > size:
                        raise DownloadError(f"server sent more than the announced {size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if got != size:
                raise DownloadError(f"got {got} bytes, the fleet announced {size}")
            if digest.hexdigest() != sha256:
                raise DownloadError("sha256 of the downloaded file does not match the fleet's")
            return path
        except requests.RequestException as exc:
            path.unlink(missing_ok=True)
            raise DownloadError(f"download failed: {exc}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _get_file(self, url: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # No redirects: the printer's token must go to the fleet and nowhere else.
        response = self.session.get(
            url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=False
        )
        if response.status_code != 200:
            response.close()
            raise DownloadError(f"fleet answered HTTP {response.status_code} for the job file")
        return response


class MultipartUpload:
    """A multipart/form-data body read from disk as it is sent, with a known length (no chunking)."""

    def __init__(
        self,
        path: Path,
        fields: dict[str, str],
        filename: str,
        on_bytes: Optional[Callable[[int], None]] = None,
    ) -> None:
        self.boundary = uuid.uuid4().hex
        head = b""
        for name, value in fields.items():
            head += (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        safe_name = "".join(ch if ch.isprintable() and ch not in '"\\' else "_" for ch in filename)
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
            f"Content-Type: {GCODE_MEDIA_TYPE}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(tail)
        self._head = io.BytesIO(head)
        self._file = path.open("rb")
        self._tail = io.BytesIO(tail)
        self._on_bytes = on_bytes

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        size = 256 * 1024 if size is None or size < 0 else size
        for part in (self._head, self._file, self._tail):
            data = part.read(size)
            if data:
                if part is self._file and self._on_bytes is not None:
                    self._on_bytes(len(data))
                return data
        return b""

    def close(self) -> None:
        self._file.close()
