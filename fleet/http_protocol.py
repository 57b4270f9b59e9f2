"""The fleet's HTTP contract with its nodes and clients: API paths and the node-facing payloads, version 1.

The MQTT contract is :mod:`fleet.protocol`; this is its HTTP sibling. Both sides read it: the fleet's
routes and link build paths and answers from it, :mod:`fleet.client` (the node, the OctoPrint plugin and
the command line) sends and decodes with it. Pure: no requests, no Flask, so a Raspberry Pi imports it
with the base install. Decoders turn untrusted JSON into frozen dataclasses or raise
:class:`~fleet.protocol.ProtocolError` naming the field; nothing past them sees raw JSON.

- ``POST ENROLL`` (no auth): :class:`EnrollRequest` in, :class:`EnrollmentAnswer` out (201): the printer's
  id, its HTTP token and its broker login (:class:`BrokerAddress`).
- ``GET job_file_path(printer_id, job_id)`` (the printer's token): the job's file, checked by the node
  against the sha256 and size the dispatch command carried.
- ``PUT job_snapshot_path(printer_id, job_id)`` (the printer's token): the JPEG or PNG photo of the plate
  the printer took after the job, as the body (at most :data:`MAX_SNAPSHOT_BYTES`); 204.
- ``GET unfit_path(printer_id)`` (the printer's token): :class:`Unfit` jobs, those waiting that no printer
  can take and this printer's profile cannot take either, each with the reason (needs only, no names).
- ``POST JOBS`` (a member's token): a multipart form (:class:`JobSubmission`, the file in ``file``) with an
  ``Idempotency-Key``: a retry with the same key queues the submission once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import Invalid
from .protocol import PRINTER_ID_RE, Capabilities, ProtocolError, decode_capabilities

API_VERSION = 1
API_PREFIX = f"/api/v{API_VERSION}"
HEALTH = f"{API_PREFIX}/health"
OPENAPI = f"{API_PREFIX}/openapi.json"
ENROLL = f"{API_PREFIX}/printers/enroll"
JOBS = f"{API_PREFIX}/jobs"
MY_JOBS = f"{API_PREFIX}/jobs/mine"
QUEUE = f"{API_PREFIX}/queue"
SPOOLS = f"{API_PREFIX}/spools"
#: A member signs in (name and password, or a link code) for a named token of its own.
TOKENS = f"{API_PREFIX}/tokens"
#: The header that makes a submission safe to send again (draft-ietf-httpapi-idempotency-key-header).
IDEMPOTENCY_KEY = "Idempotency-Key"
#: The media type a G-code upload is sent with.
GCODE_MEDIA_TYPE = "text/x.gcode"


def job_path(job_id: int) -> str:
    return f"{JOBS}/{job_id}"


def job_cancel_path(job_id: int) -> str:
    return f"{JOBS}/{job_id}/cancel"


def job_file_path(printer_id: str, job_id: int) -> str:
    """Where the printer ``printer_id`` downloads the file of the job dispatched to it."""
    return f"{API_PREFIX}/printers/{printer_id}/jobs/{job_id}/file"


def job_snapshot_path(printer_id: str, job_id: int) -> str:
    """Where the printer ``printer_id`` sends the photo of its plate taken after job ``job_id``."""
    return f"{API_PREFIX}/printers/{printer_id}/jobs/{job_id}/snapshot"


def spool_path(spool_id: int) -> str:
    return f"{SPOOLS}/{spool_id}"


def printer_spool_path(printer_id: str) -> str:
    """Where the printer ``printer_id`` reads, loads (PUT) and unloads (DELETE) the spool on it."""
    return f"{API_PREFIX}/printers/{printer_id}/spool"


def unfit_path(printer_id: str) -> str:
    """Where the printer ``printer_id`` asks which waiting jobs its profile cannot take, and why."""
    return f"{API_PREFIX}/printers/{printer_id}/unfit"


@dataclass(frozen=True)
class Unfit:
    """A waiting job that no printer can take, nor this one: what its owner reads in OctoPrint."""

    job_id: int
    #: Such as "250 x 210 x 220 mm needed, this profile gives 200 x 200 x 200 mm" (with the times sign).
    reason: str
    #: The same as a stable key and its values (``too_small``, ``{"needed": ..., "have": ...}``), for a
    #: node to word in its user's language; empty from a fleet that sends none.
    key: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def decode_unfit(data: Any) -> tuple[Unfit, ...]:
    """The fleet's answer to ``GET unfit_path``; :class:`ProtocolError` naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ProtocolError("the fleet's answer about unfit jobs has no 'jobs' list", field="jobs")
    result = []
    for i, item in enumerate(data["jobs"]):
        if not isinstance(item, dict):
            raise ProtocolError(f"jobs[{i}] is not an object", field="jobs")
        job_id, reason = item.get("job_id"), item.get("reason")
        if not isinstance(job_id, int) or isinstance(job_id, bool) or not isinstance(reason, str):
            raise ProtocolError(f"jobs[{i}] needs an integer job_id and a text reason", field="jobs")
        key, params = item.get("key", ""), item.get("params", {})
        if (
            not isinstance(key, str)
            or not isinstance(params, dict)
            or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in params.values())
        ):
            raise ProtocolError(f"jobs[{i}] needs a text key and params of texts and numbers", field="jobs")
        result.append(Unfit(job_id, reason, key, params))
    return tuple(result)


#: The largest plate photo any fleet takes (a lab sets its own limit up to this); a node sends no larger.
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
#: A lab's limit until a manager sets another (``snapshot_max_bytes`` of the lab settings).
DEFAULT_SNAPSHOT_BYTES = 2 * 1024 * 1024
#: What a plate photo may be, told by its first bytes (never by what the sender claims).
_IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def image_type(data: bytes) -> Optional[str]:
    """``image/jpeg`` or ``image/png`` when ``data`` starts like one, else None."""
    return next((media for magic, media in _IMAGE_MAGIC if data.startswith(magic)), None)


# -- the broker address ---------------------------------------------------------------------------

_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True)
class BrokerAddress:
    """Where an MQTT broker is and how to log in; the password never appears in repr or logs.

    The one broker-address type: the fleet's own link (from ``--mqtt-url``), the address the fleet tells
    enrolled printers (the ``mqtt`` object of :class:`EnrollmentAnswer`), and the node's saved login.
    """

    host: str
    port: int = 1883
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    tls: bool = False
    #: A CA bundle on this machine for ``tls``; never sent over the wire.
    ca_file: Optional[str] = None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """``mqtt://user:pass@host:1883`` or ``mqtts://host:8883?ca_file=/path/ca.pem``."""

        def bad(what: str) -> Invalid:
            return Invalid(f"bad MQTT URL: {what} (expected mqtt://user:pass@host:1883)", field="mqtt_url")

        try:
            parts = urlsplit(url.strip())
        except ValueError as exc:
            raise bad(str(exc)) from None
        try:
            port = parts.port
        except ValueError as exc:
            raise bad(f"bad port: {exc}") from None
        if port == 0:
            raise bad("bad port: 0")
        if parts.scheme not in _SCHEMES:
            raise bad(f"scheme must be mqtt or mqtts, not {parts.scheme!r}")
        if not parts.hostname:
            raise bad("no host")
        if parts.path not in ("", "/"):
            raise bad(f"unexpected path {parts.path!r}")
        if parts.fragment:
            raise bad("unexpected #fragment")
        ca_file = None
        if parts.query:
            try:
                query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
            except ValueError:
                raise bad(f"cannot read the query {parts.query!r}") from None
            unknown = sorted(set(query) - {"ca_file"})
            if unknown:
                raise bad(f"unknown option {unknown[0]!r} (only ca_file is understood)")
            ca_file = query["ca_file"][-1] or None
        tls, default_port = _SCHEMES[parts.scheme]
        if ca_file is not None and not tls:
            raise bad("ca_file needs the mqtts scheme")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and username is None:
            raise bad("a password without a username")
        return cls(
            host=parts.hostname,
            port=port if port is not None else default_port,
            username=username,
            password=password,
            tls=tls,
            ca_file=ca_file,
        )

    def redacted(self) -> str:
        """The address as a URL for logs, with the password masked."""
        scheme = "mqtts" if self.tls else "mqtt"
        login = ""
        if self.username is not None:
            login = quote(self.username, safe="") + (":***" if self.password is not None else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{login}{host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        """The wire form (the enrollment answer's ``mqtt`` object, a node's saved login)."""
        wire = asdict(self)
        del wire["ca_file"]  # a path on this machine, meaningless to another
        return wire

    @classmethod
    def from_json(cls, data: Any, prefix: str = "mqtt.") -> BrokerAddress:
        """The wire form back; a missing port means 1883, a missing ``tls`` means plain."""
        if not isinstance(data, dict):
            raise ProtocolError(f"{prefix.rstrip('.')} must be an object", field=prefix.rstrip("."))
        port = data.get("port") or 1883
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ProtocolError(f"{prefix}port must be a port number (1 to 65535)", field=f"{prefix}port")
        return cls(
            host=_text(data, "host", prefix),
            port=port,
            username=_text(data, "username", prefix, optional=True),
            password=_text(data, "password", prefix, optional=True),
            tls=_typed(data, "tls", (bool, type(None)), prefix, "true or false") is True,
        )


# -- enrollment -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollRequest:
    """A node asking to enroll its printer: the manager's one-time code, a name, what it can print.

    The node sends what its settings know (any capability may be missing); the fleet's typed edge
    checks it (a volume is required there) and hands the service this same value.
    """

    code: str
    name: str
    capabilities: Capabilities

    def to_json(self) -> dict[str, Any]:
        """The request body; capabilities the node does not know are left out, not sent as null."""
        known = {k: v for k, v in self.capabilities.to_json().items() if v is not None}
        return {"code": self.code, "name": self.name, "capabilities": known}

    @classmethod
    def from_json(cls, data: Any) -> EnrollRequest:
        if not isinstance(data, dict):
            raise ProtocolError("the enrollment request must be a JSON object")
        capabilities = decode_capabilities(data.get("capabilities"))
        return cls(code=_text(data, "code", ""), name=_text(data, "name", ""), capabilities=capabilities)


@dataclass(frozen=True)
class EnrollmentAnswer:
    """The fleet's answer to an enrollment: shown once, so the node keeps it (the fleet keeps only hashes)."""

    printer_id: str
    #: The printer's bearer token for its job downloads.
    token: str
    #: The broker the node connects to, with the printer's own login.
    mqtt: BrokerAddress

    def to_json(self) -> dict[str, Any]:
        return {"printer_id": self.printer_id, "token": self.token, "mqtt": self.mqtt.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> EnrollmentAnswer:
        if not isinstance(data, dict):
            raise ProtocolError("the enrollment answer must be a JSON object")
        if not isinstance(data.get("mqtt"), dict):
            raise ProtocolError("the enrollment answer has no mqtt object", field="mqtt")
        printer_id = _text(data, "printer_id", "")
        if not PRINTER_ID_RE.match(printer_id):
            raise ProtocolError(
                f"printer_id is not one a node can use: {printer_id!r:.80}", field="printer_id"
            )
        return cls(
            printer_id=printer_id, token=_text(data, "token", ""), mqtt=BrokerAddress.from_json(data["mqtt"])
        )


# -- job submission -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSubmission:
    """The form fields of ``POST JOBS`` beside the file: how many copies, in what, a note, and for a
    sliced 3MF file with several plates, which plate."""

    copies: int = 1
    material: Optional[str] = None
    note: str = ""
    plate: Optional[int] = None
    #: A colour's name: only a printer with a spool of that colour loaded takes the job.
    colour: Optional[str] = None

    def form(self) -> dict[str, str]:
        fields = {"copies": str(self.copies)}
        if self.material:
            fields["material"] = self.material
        if self.colour:
            fields["colour"] = self.colour
        if self.note:
            fields["note"] = self.note
        if self.plate is not None:
            fields["plate"] = str(self.plate)
        return fields


def quote_idempotency_key(key: str) -> str:
    """The header value for ``key``: a Structured Field String (RFC 8941), as the draft asks."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_idempotency_key(raw: str) -> str:
    """The key in an ``Idempotency-Key`` header: a quoted Structured Field String, or a bare key as is."""
    if not raw.startswith('"'):
        return raw
    bad = ProtocolError(
        'the Idempotency-Key header must be a quoted string ("…", escaping only \\" and \\\\) or a bare key',
        field=IDEMPOTENCY_KEY,
    )
    if len(raw) < 2 or not raw.endswith('"'):
        raise bad
    out: list[str] = []
    chars = iter(raw[1:-1])
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "")
            if ch not in ('"', "\\"):
                raise bad
        elif ch == '"':
            raise bad
        out.append(ch)
    return "".join(out)


# -- field readers --------------------------------------------------------------------------------


def _typed(data: dict[str, Any], key: str, kind: Any, prefix: str, what: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ProtocolError(f"{prefix}{key} must be {what}", field=f"{prefix}{key}")
    return value


def _text(data: dict[str, Any], key: str, prefix: str, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or value == "":
        raise ProtocolError(f"{prefix}{key} is missing or not text", field=f"{prefix}{key}")
    return value
