"""The fleet's MQTT wire protocol, version 1: topics and payloads, shared by the fleet and every node.

Topics live under ``crowdfab/v1/printers/<printer_id>/``:

- ``status`` (node → fleet, retained, QoS 1): the printer's state, temperatures, progress, job, capabilities.
- ``availability`` (node → fleet, retained, QoS 1): the plain strings ``online`` / ``offline``; ``offline``
  is the connection's last will, so the broker publishes it when the node vanishes.
- ``events`` (node → fleet, QoS 1): what happened to a job (started, done, failed …).
- ``cmd`` (fleet → node, QoS 1, never retained): commands with an id and an expiry.
- ``ack`` (node → fleet, QoS 1): the node's answer to a command, by command id.

Every JSON payload carries ``"v": 1``. Decoders turn untrusted bytes into frozen dataclasses or raise
:class:`ProtocolError` naming what is wrong; nothing past them sees raw JSON.

It is one module of a little over 500 lines on purpose: it is the one definition of the wire contract
that the fleet, the plugin and the agent all import, so a reader checks a payload's encoder against
its decoder, and a topic against the broker's access rules, in one place.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from .errors import Invalid
from .geometry import Box
from .lending import Lending, decode_lending

VERSION = 1
ROOT = f"crowdfab/v{VERSION}"
PRINTERS = f"{ROOT}/printers"
PRINTER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
#: Commands and events are small; a payload beyond this is refused before parsing.
MAX_PAYLOAD = 64 * 1024
#: The latest time a payload may carry: the end of year 9999, the last a date can show.
MAX_TIME = 253402300799.0
#: Ids and sizes are stored as signed 64-bit integers.
MAX_INT = 2**63 - 1
#: The longest a node may ask the fleet to hold a job for its owner's answer: one day.
MAX_ANSWER_WITHIN_S = 86400.0

ONLINE = "online"
OFFLINE = "offline"


class Channel(str, Enum):
    STATUS = "status"
    AVAILABILITY = "availability"
    EVENTS = "events"
    CMD = "cmd"
    ACK = "ack"


#: What a node publishes (and so what a printer's broker credentials may write).
NODE_PUBLISHES = frozenset({Channel.STATUS, Channel.AVAILABILITY, Channel.EVENTS, Channel.ACK})
#: Retained channels: a new subscriber learns the last value at once.
RETAINED = frozenset({Channel.STATUS, Channel.AVAILABILITY})


class ProtocolError(Invalid):
    """A message that does not follow the protocol: logged and dropped by the receiver."""


def topic(printer_id: str, channel: Channel) -> str:
    if not PRINTER_ID_RE.match(printer_id):
        raise ProtocolError(f"not a valid printer id: {printer_id!r}")
    return f"{PRINTERS}/{printer_id}/{channel.value}"


def node_client_id(printer_id: str, secret: Optional[str]) -> str:
    """The MQTT client id a printer's node connects with: its printer id and a digest of its password.

    A broker closes the older of two connections that share a client id, whoever opened the newer
    one. An id another printer could work out would let it knock this node off the broker; the
    digest of the node's broker password is known only to whoever holds that password. The id
    stays the same across restarts, so a node back from a crash replaces its own stale connection.
    """
    if not secret:
        return f"crowdfab-node-{printer_id}"
    digest = hashlib.sha256(b"crowdfab-client-id:" + secret.encode("utf-8")).hexdigest()[:16]
    return f"crowdfab-node-{printer_id}-{digest}"


def wildcard(channel: Channel) -> str:
    """The subscription for one channel of every printer (the fleet's side)."""
    return f"{PRINTERS}/+/{channel.value}"


#: A shared-subscription group name goes into topic filters as it is.
SHARE_GROUP_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def shared(topic_filter: str, group: Optional[str]) -> str:
    """``topic_filter`` as an MQTT 5 shared subscription of ``group`` (``$share/<group>/<filter>``):
    the broker hands each message to one subscriber of the group. None leaves the filter as it is."""
    if group is None:
        return topic_filter
    if not SHARE_GROUP_RE.match(group):
        raise Invalid(
            "a shared-subscription group may use only letters, digits, _ and - (1-64 characters)",
            field="share_group",
        )
    return f"$share/{group}/{topic_filter}"


def parse_topic(name: str) -> tuple[str, Channel]:
    """``crowdfab/v1/printers/<id>/<channel>`` → (id, channel); anything else is a ProtocolError."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != PRINTERS:
        raise ProtocolError(f"not a CrowdFab v{VERSION} printer topic: {name!r}")
    printer_id, channel = parts[3], parts[4]
    if not PRINTER_ID_RE.match(printer_id):
        raise ProtocolError(f"not a valid printer id in topic: {name!r}")
    try:
        return printer_id, Channel(channel)
    except ValueError:
        raise ProtocolError(f"unknown channel {channel!r} in topic {name!r}") from None


# -- enums on the wire ----------------------------------------------------------------------------


class NodeState(str, Enum):
    """A printer as its node sees it."""

    #: The node runs but the printer is not connected to it (OctoPrint not connected, port closed).
    DISCONNECTED = "disconnected"
    IDLE = "idle"
    #: Printing a fleet job.
    PRINTING = "printing"
    PAUSED = "paused"
    #: Busy with something the fleet did not send (a local print, a manual job).
    BUSY_LOCAL = "busy_local"
    AWAITING_BED_CLEAR = "awaiting_bed_clear"
    ERROR = "error"


class CommandType(str, Enum):
    DISPATCH = "dispatch"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    #: A person confirmed at the fleet that the plate is clear.
    BED_CLEARED = "bed_cleared"
    #: A manager asks for a photo of the plate, sent for ``job_id`` (the job on it) as after a job.
    SNAPSHOT = "snapshot"


class AckStatus(str, Enum):
    ACCEPTED = "accepted"
    #: The owner of a home printer is asked first; a final accepted/declined follows.
    PENDING = "pending"
    DECLINED = "declined"
    DONE = "done"
    FAILED = "failed"


class EventType(str, Enum):
    JOB_STARTED = "job_started"
    JOB_PAUSED = "job_paused"
    JOB_RESUMED = "job_resumed"
    JOB_DONE = "job_done"
    JOB_FAILED = "job_failed"
    JOB_CANCELLED = "job_cancelled"
    BED_CLEARED = "bed_cleared"
    ERROR = "error"


# -- payloads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Temperature:
    actual: Optional[float]
    target: Optional[float]


class BedShape(str, Enum):
    """The print bed's outline: a round bed reaches only the circle inside its volume's box."""

    RECTANGULAR = "rectangular"
    CIRCULAR = "circular"


#: More extruders than this on one printer is a malformed status, not a printer.
MAX_EXTRUDERS = 16


@dataclass(frozen=True)
class Capabilities:
    """What a printer can print. The fields after ``material`` are optional on the wire (a node that
    does not know them leaves them out, and a fleet that does not use them yet ignores them)."""

    volume: Optional[Box] = None
    nozzle_diameter: Optional[float] = None
    material: Optional[str] = None
    bed_shape: Optional[BedShape] = None
    heated_bed: Optional[bool] = None
    heated_chamber: Optional[bool] = None
    extruders: Optional[int] = None

    def to_json(self) -> dict[str, Any]:
        """The ``capabilities`` object of a status: the three first keys always, the others when known."""
        data: dict[str, Any] = {
            "volume": self.volume.to_dict() if self.volume is not None else None,
            "nozzle_diameter": self.nozzle_diameter,
            "material": self.material,
        }
        if self.bed_shape is not None:
            data["bed_shape"] = self.bed_shape.value
        for key in ("heated_bed", "heated_chamber", "extruders"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class Status:
    state: NodeState
    ts: float
    temperatures: dict[str, Temperature] = field(default_factory=dict)
    #: 0-100, for the current job.
    progress: Optional[float] = None
    job_id: Optional[int] = None
    #: Expected end of the current job, epoch seconds.
    eta: Optional[float] = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    message: str = ""
    #: The owner's lending terms (:mod:`fleet.lending`); None: lent whenever it is idle, any material.
    lending: Optional[Lending] = None


@dataclass(frozen=True)
class JobRef:
    """What a node needs to fetch and check a dispatched job's file."""

    job_id: int
    url: str
    sha256: str
    size: int
    filename: str
    #: Estimated print time, for the owner's accept/decline prompt.
    estimated_s: Optional[float] = None


@dataclass(frozen=True)
class Command:
    id: str
    type: CommandType
    issued_at: float
    expires_at: float
    job_id: Optional[int] = None
    job: Optional[JobRef] = None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class Ack:
    command_id: str
    status: AckStatus
    ts: float
    job_id: Optional[int] = None
    reason: str = ""
    #: With ``pending``: how many seconds the owner has to answer; the final answer comes by then.
    answer_within_s: Optional[float] = None


@dataclass(frozen=True)
class Event:
    type: EventType
    ts: float
    job_id: Optional[int] = None
    message: str = ""


# -- encoding -------------------------------------------------------------------------------------


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": VERSION, **body}, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_capabilities(caps: Any) -> Capabilities:
    """What a node says its printer can do; any field may be missing (null)."""
    if not isinstance(caps, dict):
        raise ProtocolError("capabilities must be an object", field="capabilities")
    try:
        volume = Box.from_dict(caps["volume"], "capabilities.volume") if caps.get("volume") else None
    except Invalid as exc:
        raise ProtocolError(exc.message) from None
    material = caps.get("material")
    if material is not None and (not isinstance(material, str) or len(material) > 32):
        raise ProtocolError("capabilities.material must be a short string")
    if material is not None:
        _text(material, "capabilities.material")
    shape = caps.get("bed_shape")
    if shape is not None and shape not in {s.value for s in BedShape}:
        raise ProtocolError(f"capabilities.bed_shape must be one of: {', '.join(s.value for s in BedShape)}")
    flags: dict[str, Optional[bool]] = {}
    for key in ("heated_bed", "heated_chamber"):
        value = caps.get(key)
        if value is not None and not isinstance(value, bool):
            raise ProtocolError(f"capabilities.{key} must be true or false")
        flags[key] = value
    extruders = caps.get("extruders")
    if extruders is not None and (
        isinstance(extruders, bool) or not isinstance(extruders, int) or not 1 <= extruders <= MAX_EXTRUDERS
    ):
        raise ProtocolError(f"capabilities.extruders must be a whole number from 1 to {MAX_EXTRUDERS}")
    return Capabilities(
        volume,
        _num(caps, "nozzle_diameter", optional=True),
        material,
        bed_shape=None if shape is None else BedShape(shape),
        heated_bed=flags["heated_bed"],
        heated_chamber=flags["heated_chamber"],
        extruders=extruders,
    )


def encode_status(status: Status) -> bytes:
    return _dump(
        {
            "state": status.state.value,
            "ts": status.ts,
            "temperatures": {
                k: {"actual": t.actual, "target": t.target} for k, t in status.temperatures.items()
            },
            "progress": status.progress,
            "job_id": status.job_id,
            "eta": status.eta,
            "capabilities": status.capabilities.to_json(),
            "message": status.message,
            **({} if status.lending is None else {"lending": status.lending.to_json()}),
        }
    )


def encode_command(command: Command) -> bytes:
    job = command.job
    return _dump(
        {
            "id": command.id,
            "type": command.type.value,
            "issued_at": command.issued_at,
            "expires_at": command.expires_at,
            "job_id": command.job_id,
            "job": None
            if job is None
            else {
                "job_id": job.job_id,
                "url": job.url,
                "sha256": job.sha256,
                "size": job.size,
                "filename": job.filename,
                "estimated_s": job.estimated_s,
            },
        }
    )


def encode_ack(ack: Ack) -> bytes:
    return _dump(
        {
            "id": ack.command_id,
            "status": ack.status.value,
            "ts": ack.ts,
            "job_id": ack.job_id,
            "reason": ack.reason,
            **({} if ack.answer_within_s is None else {"answer_within_s": ack.answer_within_s}),
        }
    )


def encode_event(event: Event) -> bytes:
    return _dump({"type": event.type.value, "ts": event.ts, "job_id": event.job_id, "message": event.message})


# -- decoding -------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"payload holds {name}, which is not a JSON number")


def _load(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte limit")
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("payload is nested too deeply to be a protocol message") from None
    if not isinstance(data, dict):
        raise ProtocolError("payload must be a JSON object")
    version = data.get("v")
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version!r:.40} (this side speaks {VERSION})")
    return data


def _num(data: dict[str, Any], key: str, *, optional: bool = False) -> Optional[float]:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{key} must be a finite number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ProtocolError(f"{key} must be a finite number") from None
    if not math.isfinite(number):
        raise ProtocolError(f"{key} must be a finite number")
    return number


def _time(data: dict[str, Any], key: str, *, optional: bool = False) -> Optional[float]:
    """A moment as epoch seconds, from 1970 to the end of year 9999 (what a date can show)."""
    value = _num(data, key, optional=optional)
    if value is not None and not 0 <= value <= MAX_TIME:
        raise ProtocolError(f"{key} must be a time in seconds since 1970, up to the year 9999")
    return value


def _int(data: dict[str, Any], key: str, *, optional: bool = False) -> Optional[int]:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ProtocolError(f"{key} must be a whole number from 0 to {MAX_INT}")
    return value


def _text(value: str, key: str) -> str:
    """Refuse what no database stores: NUL characters and unpaired surrogates (JSON allows both)."""
    if "\0" in value:
        raise ProtocolError(f"{key} must not hold NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{key} must be valid Unicode text (it holds an unpaired surrogate)") from None
    return value


def _str(data: dict[str, Any], key: str, *, default: Optional[str] = None, limit: int = 500) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string")
    if len(value) > limit:
        raise ProtocolError(f"{key} is longer than {limit} characters")
    return _text(value, key)


def _enum(cls: Any, data: dict[str, Any], key: str) -> Any:
    try:
        return cls(data.get(key))
    except ValueError:
        raise ProtocolError(f"{key} must be one of: {', '.join(m.value for m in cls)}") from None


def decode_status(payload: bytes) -> Status:
    data = _load(payload)
    temps: dict[str, Temperature] = {}
    raw_temps = data.get("temperatures") or {}
    if not isinstance(raw_temps, dict) or len(raw_temps) > 16:
        raise ProtocolError("temperatures must be an object of at most 16 heaters")
    for name, t in raw_temps.items():
        if not isinstance(t, dict):
            raise ProtocolError(f"temperatures.{name} must be an object with actual and target")
        temps[_text(str(name)[:32], "temperatures")] = Temperature(
            _num(t, "actual", optional=True), _num(t, "target", optional=True)
        )
    progress = _num(data, "progress", optional=True)
    if progress is not None and not 0 <= progress <= 100:
        raise ProtocolError("progress must be from 0 to 100")
    return Status(
        state=_enum(NodeState, data, "state"),
        ts=_time(data, "ts") or 0.0,
        temperatures=temps,
        progress=progress,
        job_id=_int(data, "job_id", optional=True),
        eta=_time(data, "eta", optional=True),
        capabilities=decode_capabilities(data.get("capabilities") or {}),
        message=_str(data, "message", default=""),
        lending=_lending(data.get("lending")),
    )


def _lending(data: Any) -> Optional[Lending]:
    """The optional ``lending`` of a status; a bad one is a protocol error naming its field."""
    if data is None:
        return None
    try:
        return decode_lending(data, "lending")
    except Invalid as exc:
        raise ProtocolError(exc.message, field=exc.field) from None


def decode_command(payload: bytes) -> Command:
    data = _load(payload)
    job = None
    raw_job = data.get("job")
    if raw_job is not None:
        if not isinstance(raw_job, dict):
            raise ProtocolError("job must be an object")
        sha = _str(raw_job, "sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ProtocolError("job.sha256 must be 64 lowercase hex characters")
        url = _str(raw_job, "url", limit=2000)
        if not url.startswith(("http://", "https://")):
            raise ProtocolError("job.url must be an http(s) URL")
        job = JobRef(
            job_id=_int(raw_job, "job_id") or 0,
            url=url,
            sha256=sha,
            size=_int(raw_job, "size") or 0,
            filename=_str(raw_job, "filename", limit=200),
            estimated_s=_num(raw_job, "estimated_s", optional=True),
        )
    command = Command(
        id=_str(data, "id", limit=64),
        type=_enum(CommandType, data, "type"),
        issued_at=_time(data, "issued_at") or 0.0,
        expires_at=_time(data, "expires_at") or 0.0,
        job_id=_int(data, "job_id", optional=True),
        job=job,
    )
    if not command.id:
        raise ProtocolError("id must not be empty")
    if command.type is CommandType.DISPATCH and job is None:
        raise ProtocolError("a dispatch command needs its job")
    return command


def decode_ack(payload: bytes) -> Ack:
    data = _load(payload)
    return Ack(
        command_id=_str(data, "id", limit=64),
        status=_enum(AckStatus, data, "status"),
        ts=_time(data, "ts") or 0.0,
        job_id=_int(data, "job_id", optional=True),
        reason=_str(data, "reason", default=""),
        answer_within_s=_answer_within(data),
    )


def _answer_within(data: dict[str, Any]) -> Optional[float]:
    value = _num(data, "answer_within_s", optional=True)
    if value is not None and not 0 <= value <= MAX_ANSWER_WITHIN_S:
        raise ProtocolError(f"answer_within_s must be from 0 to {MAX_ANSWER_WITHIN_S} seconds")
    return value


def decode_event(payload: bytes) -> Event:
    data = _load(payload)
    return Event(
        type=_enum(EventType, data, "type"),
        ts=_time(data, "ts") or 0.0,
        job_id=_int(data, "job_id", optional=True),
        message=_str(data, "message", default=""),
    )


def decode_availability(payload: bytes) -> bool:
    """True for ``online``, False for ``offline``."""
    text = payload.decode("utf-8", "replace").strip()
    if text not in (ONLINE, OFFLINE):
        raise ProtocolError(f"availability must be {ONLINE!r} or {OFFLINE!r}")
    return text == ONLINE
