"""The plugin's life cycle as a plain object: enroll when needed, run the node, report how the link is.

Nothing here blocks OctoPrint: enrollment and connecting happen on a background thread. A fleet that
cannot be reached is tried again, less and less often (30 s, doubling, at most every 10 min); a fleet
that refuses (a wrong or used code, a printer it cannot take) is not asked again until the user changes
something, since asking again could only get the same answer. Either way the status says why, in the
fleet's own words plus a ``problem`` the user interface explains.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from fleet.client import FleetClient
from fleet.errors import Invalid
from fleet.geometry import Box
from fleet.lending import Lending, closing_at, decode_lending, is_open, next_opening, parse_windows
from fleet.node import NodeSettings, PlateReporter, PrinterNode, PrinterPort, Webcam
from fleet.protocol import Capabilities

from .enroll import BrokerAddress, EnrollmentAnswer, FleetRequestError, enroll
from .profile import capabilities_from_profile
from .webcam import NO_WEBCAM, WebcamSettings

log = logging.getLogger(__name__)


class LinkState(str, Enum):
    NOT_ENROLLED = "not enrolled"
    ENROLLING = "enrolling"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    #: The fleet could not be reached to enroll (or answered with a server error): tried again later.
    UNREACHABLE = "unreachable"
    #: The fleet refused to enroll this printer: nothing is tried until the settings change.
    REFUSED = "refused"
    #: Enrolled, but the node could not be built (the message says why).
    BROKEN = "broken"


class Problem(str, Enum):
    """Why the printer is not in the fleet, for the user interface to explain in the user's language."""

    NONE = ""
    #: No fleet URL or no enrollment code: the wizard or the settings ask for them.
    NOT_SET_UP = "not_set_up"
    UNREACHABLE = "unreachable"
    #: The code is not known to the fleet (mistyped, or from an older fleet that does not say why).
    CODE = "code"
    #: The code was already used to enroll a printer.
    CODE_USED = "code_used"
    #: The code's time ran out before it was used.
    CODE_EXPIRED = "code_expired"
    #: The fleet has a printer of that name already.
    NAME = "name"
    #: Any other refusal: the fleet's words say what (for example a build volume it cannot take).
    REFUSED = "refused"
    NODE = "node"


#: Seconds between asks for the waiting jobs this printer cannot take (a new job waits that long to show).
UNFIT_CHECK_S = 120.0

#: Seconds between enrollment tries while the fleet cannot be reached: the first wait, and the longest.
RETRY_FIRST_S = 30.0
RETRY_MAX_S = 600.0


def problem_of(exc: FleetRequestError) -> Problem:
    """What a failed enrollment means for the user: a refusal by its HTTP status, else unreachable."""
    if exc.status is None:
        return Problem.UNREACHABLE
    if exc.status == 401:
        reason = exc.details.get("reason") if isinstance(exc.details, dict) else None
        return {"used": Problem.CODE_USED, "expired": Problem.CODE_EXPIRED}.get(str(reason), Problem.CODE)
    if exc.status == 409:
        return Problem.NAME
    return Problem.REFUSED


@dataclass(frozen=True)
class PluginConfig:
    fleet_url: str = ""
    enroll_code: str = ""
    printer_id: str = ""
    printer_token: str = ""
    mqtt: Optional[BrokerAddress] = None
    auto_accept: bool = True
    accept_timeout_s: float = 300.0
    material: Optional[str] = None
    #: The plugin's overrides of what the printer profile says (None: the profile's).
    volume: Optional[Box] = None
    nozzle_diameter: Optional[float] = None
    #: Seconds between MQTT keepalives: the fleet learns of a vanished printer after 1.5 times this.
    keepalive_s: int = 30
    #: OctoPrint's printer profile as plain dict (see :mod:`.profile`).
    profile: Optional[dict[str, Any]] = None
    #: The owner's lending terms (:mod:`fleet.lending`); None: lent whenever idle, any material.
    lending: Optional[Lending] = None
    #: The webcam's snapshot URL and login (OctoPrint's webcam settings); no URL: no photo is sent.
    webcam: WebcamSettings = NO_WEBCAM
    #: Seconds between asking the fleet which waiting jobs this printer's profile cannot take.
    unfit_check_s: float = UNFIT_CHECK_S
    #: What is wrong with the owner's lending terms, for the settings page and the tab ("" when nothing).
    lending_error: str = ""
    #: The same as a key and values, for the user interface to word in its user's language.
    lending_problem: Optional[LendingProblem] = None

    @classmethod
    def from_settings(
        cls,
        get: Callable[[list[str]], Any],
        profile: Optional[dict[str, Any]] = None,
        webcam: Optional[WebcamSettings] = None,
    ) -> PluginConfig:
        """Read the plugin's settings through ``get([key, ...])`` (OctoPrint's ``_settings.get``)."""
        mqtt = get(["mqtt"]) or {}
        host = mqtt.get("host")
        lending, lending_problem = read_lending(
            get(["lending_windows"]) or "", get(["lending_time_zone"]) or "", get(["lending_materials"]) or ""
        )
        volume = None
        if get(["volume"]):
            try:
                volume = Box.from_dict(get(["volume"]), "volume")
            except Invalid as exc:
                log.error("ignoring the volume setting: %s", exc.message)
        return cls(
            fleet_url=get(["fleet_url"]) or "",
            enroll_code=get(["enroll_code"]) or "",
            printer_id=get(["printer_id"]) or "",
            printer_token=get(["printer_token"]) or "",
            mqtt=BrokerAddress(
                host,
                int(mqtt.get("port") or 1883),
                mqtt.get("username"),
                mqtt.get("password"),
                bool(mqtt.get("tls")),
            )
            if host
            else None,
            auto_accept=bool(get(["auto_accept"])),
            accept_timeout_s=float(get(["accept_timeout_s"]) or 300.0),
            material=get(["material"]) or None,
            volume=volume,
            nozzle_diameter=float(get(["nozzle_diameter"])) if get(["nozzle_diameter"]) else None,
            keepalive_s=max(5, min(300, int(get(["mqtt_keepalive_s"]) or 30))),
            profile=profile,
            lending=lending,
            lending_error=lending_problem.text if lending_problem else "",
            lending_problem=lending_problem,
            webcam=webcam or NO_WEBCAM,
            unfit_check_s=max(5.0, float(get(["unfit_check_s"]) or UNFIT_CHECK_S)),
        )

    @property
    def enrolled(self) -> bool:
        return bool(self.printer_id and self.printer_token and self.mqtt)

    @property
    def capabilities(self) -> Capabilities:
        """The printer profile's capabilities with the plugin's own settings over them."""
        return capabilities_from_profile(
            self.profile,
            material=self.material,
            volume_override=self.volume,
            nozzle_override=self.nozzle_diameter,
        )


#: What terms the owner cannot have meant are read as: lent never, until the owner fixes them.
NOT_LENT = Lending("UTC", ())


def lending_setting(windows: str, time_zone: str, materials: str) -> Optional[Lending]:
    """The owner's terms from the settings; see :func:`read_lending`."""
    return read_lending(windows, time_zone, materials)[0]


@dataclass(frozen=True)
class LendingProblem:
    """What is wrong with the owner's lending terms: in English (``text``, for the log), and as the
    setting, the piece of it and a key with values, for the user interface to word in its language."""

    text: str
    #: Which setting: windows, time_zone, materials (or "" for the terms as a whole).
    setting: str
    #: The piece of the lending hours at fault, as the owner typed it ("" when none).
    piece: str
    key: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"setting": self.setting, "piece": self.piece, "key": self.key, "params": dict(self.params)}


def read_lending(
    windows: str, time_zone: str, materials: str
) -> tuple[Optional[Lending], Optional[LendingProblem]]:
    """The owner's terms from the settings (``mon-fri 20:00-08:00; sat,sun 08:00-24:00``, a zone such
    as Europe/Paris, materials such as ``PLA, PETG``) and what is wrong with them; no windows: lent
    whenever idle. Terms that do not parse lend the printer never (it is not handed out on terms the
    owner did not set); the error, worded for the owner, is logged and shown in the UI."""
    if not str(windows).strip():
        return None, None
    try:
        data: dict[str, Any] = {"time_zone": str(time_zone).strip(), "windows": parse_windows(str(windows))}
        names = [m.strip() for m in str(materials).split(",") if m.strip()]
        if names:
            data["materials"] = names
        return decode_lending(data, "lending"), None
    except Invalid as exc:
        log.error("the printer is not lent until the lending setting is fixed: %s", exc.message)
        return NOT_LENT, lending_problem(exc, str(windows))


#: The settings' names as the settings page shows them, by the field :mod:`fleet.lending` names.
_LENDING_FIELDS = {
    "windows": "lending hours",
    "time_zone": "lending time zone",
    "materials": "lending materials",
}


def lending_problem(exc: Invalid, windows: str) -> LendingProblem:
    """The setting, the piece and the fault: ``lending hours: 'mon-fri 25:00-08:00': start must be ...``."""
    field = exc.field or ""
    key = exc.key or "lending_shape"
    found = re.match(r"lending\.(\w+)(?:\[(\d+)\])?", field)
    if found is None:
        return LendingProblem(f"lending terms: {exc.message}", "", "", key, exc.params)
    setting = found.group(1) if found.group(1) in _LENDING_FIELDS else ""
    what = _LENDING_FIELDS.get(found.group(1), "lending terms")
    message = exc.message.removeprefix(found.group(0)).lstrip(".:").strip() or exc.message
    piece = ""
    if found.group(2) is not None:
        pieces = [p.strip() for p in re.split(r"[;\n]", windows) if p.strip()]
        index = int(found.group(2))
        if index < len(pieces):
            piece = pieces[index]
            what += f": {piece!r}"
    return LendingProblem(f"{what}: {message}", setting, piece, key, exc.params)


def lending_now(lending: Optional[Lending], now: float) -> Optional[dict[str, Any]]:
    """The owner's terms as the Fablab tab shows them (in its user's language), and whether they lend the
    printer now: until when, or when next; None when the printer is lent whenever it is idle."""
    if lending is None or lending is NOT_LENT:
        return None
    terms: dict[str, Any] = lending.to_json()
    lent = is_open(lending, now)
    terms["lent_now"] = lent
    terms["until"] = _when(lending, closing_at(lending, now)) if lent else None
    terms["next"] = None if lent else _when(lending, next_opening(lending, now))
    return terms


def _when(lending: Lending, at: Optional[float]) -> Optional[dict[str, Any]]:
    """A moment in the owner's zone: its weekday (0 is Monday) and wall-clock time, for the tab to word."""
    if at is None:
        return None
    local = datetime.fromtimestamp(at, ZoneInfo(lending.time_zone))
    return {"at": at, "weekday": local.weekday(), "time": f"{local:%H:%M}"}


NodeFactory = Callable[[PluginConfig, PrinterPort, Path, Callable[[bool], None]], PrinterNode]


def build_mqtt_node(
    config: PluginConfig, printer: PrinterPort, journal: Path, on_link_change: Callable[[bool], None]
) -> PrinterNode:
    """The production node: a real MQTT link to the broker the fleet named at enrollment."""
    from fleet.node import build_node

    assert config.mqtt is not None
    plate = plate_reporter(config)
    settings = NodeSettings(
        auto_accept=config.auto_accept,
        accept_timeout_s=config.accept_timeout_s,
        capabilities=config.capabilities,
        lending=config.lending,
    )
    return build_node(
        config.printer_id,
        config.mqtt,
        printer,
        journal,
        config.printer_token,
        settings,
        keepalive=config.keepalive_s,
        on_link_change=on_link_change,
        plate=plate,
    )


def plate_reporter(config: PluginConfig) -> Optional[PlateReporter]:
    """What sends the plate's photo after each job; None without a webcam (or with an unusable URL)."""
    settings = config.webcam
    if not settings.url:
        return None
    try:
        webcam = Webcam(
            settings.url,
            timeout_s=settings.timeout_s,
            login=settings.login,
            verify_tls=settings.verify_tls,
        )
        client = FleetClient(config.fleet_url, config.printer_token, timeout=(5.0, 30.0))
    except (ValueError, FleetRequestError) as exc:
        log.error("no photos of the plate: %s", exc)
        return None
    how = f" ({settings.login.kind} authentication)" if settings.login else ""
    log.info("after each fleet job, the photo of the plate comes from %s%s", webcam.shown, how)
    return PlateReporter(webcam, client, config.printer_id)


class Runtime:
    """Owns the node for one configuration; replace the whole runtime when the settings change."""

    def __init__(
        self,
        config: PluginConfig,
        printer: PrinterPort,
        data_folder: Path,
        save_enrollment: Callable[[EnrollmentAnswer], None],
        *,
        printer_name: str = "OctoPrint",
        node_factory: NodeFactory = build_mqtt_node,
        retry_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._printer = printer
        self._journal = data_folder / "journal.json"
        self._save_enrollment = save_enrollment
        self._printer_name = printer_name
        self._node_factory = node_factory
        self._retry_s = retry_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        #: Enrollment tries made, and when the next one is due (epoch seconds) while unreachable.
        self.attempts = 0
        self._next_try_at: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._node: Optional[PrinterNode] = None
        self._state = LinkState.NOT_ENROLLED
        if self.can_start:
            self._state = LinkState.CONNECTING if config.enrolled else LinkState.ENROLLING
        self._error = ""
        self._problem = Problem.NONE if self.can_start else Problem.NOT_SET_UP
        #: The fleet's waiting jobs this printer's profile cannot take (no other printer can either).
        self._unfit: list[dict[str, Any]] = []
        #: Set when the link comes up, to ask for them at once rather than at the next interval.
        self._ask_unfit = threading.Event()

    @property
    def node(self) -> Optional[PrinterNode]:
        return self._node

    @property
    def can_start(self) -> bool:
        """Enrolled, or given what enrolling needs (a fleet URL and a code)."""
        return self.config.enrolled or bool(self.config.fleet_url and self.config.enroll_code)

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def working(self) -> bool:
        """Whether the background thread still runs (enrolling, retrying, or asking what the printer cannot
        take once joined); after a refusal it has ended."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.can_start:
            self._thread = threading.Thread(target=self._run, name="crowdfab-runtime", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._ask_unfit.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._node is not None:
            self._node.close(timeout)
            self._node = None

    def status(self) -> dict[str, Any]:
        """What the plugin's API reports: link state, printer id, the current job and any pending offer."""
        node = self._node
        offer = node.pending_offer() if node else None
        job = node.current_job() if node else None
        ref = offer.command.job if offer else None
        return {
            "link": self._state.value,
            "error": self._error,
            "problem": self._problem.value,
            "fleet_url": self.config.fleet_url,
            "next_try_at": self._next_try_at if self._state is LinkState.UNREACHABLE else None,
            "printer_id": self.config.printer_id or None,
            "lending_error": self.config.lending_error,
            "lending_problem": None
            if self.config.lending_problem is None
            else self.config.lending_problem.to_json(),
            "lending": lending_now(self.config.lending, self._clock()),
            "unfit": list(self._unfit),
            "plate_problem": None
            if node is None or node.plate is None or node.plate.problem is None
            else node.plate.problem.to_json(),
            "job": None
            if job is None
            else {"job_id": job.job_id, "phase": job.phase.value, "path": job.path},
            "pending_offer": None
            if ref is None or offer is None
            else {
                "job_id": ref.job_id,
                "filename": ref.filename,
                "size": ref.size,
                "estimated_s": ref.estimated_s,
                "deadline": offer.deadline,
            },
        }

    def _run(self) -> None:
        wait = self._retry_s
        while not self.config.enrolled and not self._stop.is_set():
            self._state = LinkState.ENROLLING
            self.attempts += 1
            try:
                self._enroll()
            except FleetRequestError as exc:
                self._error, self._problem = str(exc), problem_of(exc)
                if self._problem is not Problem.UNREACHABLE:
                    self._state = LinkState.REFUSED
                    log.error("the fleet refused to enroll this printer (not retried): %s", exc)
                    return
                self._state = LinkState.UNREACHABLE
                self._next_try_at = self._clock() + wait
                log.error("enrolling with the fleet failed (retrying in %g s): %s", wait, exc)
                self._stop.wait(wait)
                wait = min(wait * 2, self._retry_max_s)
        self._next_try_at = None
        if self._stop.is_set():
            return
        self._state = LinkState.CONNECTING
        try:
            self._node = self._node_factory(self.config, self._printer, self._journal, self._link_changed)
            self._node.start()
        except Exception as exc:
            self._state, self._error = LinkState.BROKEN, f"could not start the fleet node: {exc}"
            self._problem = Problem.NODE
            log.exception("could not start the fleet node")
            return
        self._watch_unfit()

    def _watch_unfit(self) -> None:
        """Ask the fleet now and then (and whenever the link comes up) what this printer cannot take."""
        while not self._stop.is_set():
            if self._state is LinkState.ONLINE:
                self.check_unfit()
            self._ask_unfit.wait(self.config.unfit_check_s)
            self._ask_unfit.clear()

    def check_unfit(self) -> None:
        """One ask; a failure keeps what the last answer said (and is logged), asked again later."""
        c = self.config
        try:
            with FleetClient(c.fleet_url, c.printer_token, timeout=(5.0, 15.0)) as client:
                unfit = client.unfit(c.printer_id)
        except FleetRequestError as exc:
            log.warning("could not ask the fleet which jobs this printer cannot take: %s", exc)
            return
        self._unfit = [
            {"job_id": u.job_id, "reason": u.reason, "key": u.key, "params": u.params} for u in unfit
        ]

    def spools(self) -> dict[str, Any]:
        """The spool loaded on this printer and the spools on the lab's shelves, as the fleet says."""
        return self._spools(lambda client, printer_id: client.printer_spool(printer_id))

    def load_spool(self, spool_id: int) -> dict[str, Any]:
        """Load a shelf spool on this printer (its owner's choice, through the printer's own token)."""
        return self._spools(lambda client, printer_id: client.load_spool(printer_id, spool_id))

    def unload_spool(self) -> dict[str, Any]:
        """Take the spool off this printer, back to its shelf."""
        return self._spools(lambda client, printer_id: client.unload_spool(printer_id))

    def _spools(self, call: Callable[[FleetClient, str], Any]) -> dict[str, Any]:
        """One call to the fleet with this printer's credentials; :class:`FleetRequestError` if refused."""
        c = self.config
        if not c.enrolled:
            raise FleetRequestError("this printer has not joined the fleet yet")
        with FleetClient(c.fleet_url, c.printer_token, timeout=(5.0, 15.0)) as client:
            answer = call(client, c.printer_id)
        if not isinstance(answer, dict):
            raise FleetRequestError("the fleet's answer about spools is malformed")
        return answer

    def _enroll(self) -> None:
        c = self.config
        # Only what every fleet takes at enrollment; the node's first status carries the rest.
        known = c.capabilities
        caps = Capabilities(known.volume, known.nozzle_diameter or 0.4, known.material)
        enrollment = enroll(c.fleet_url, c.enroll_code, self._printer_name, caps)
        self._save_enrollment(enrollment)
        self.config = PluginConfig(
            **{
                **c.__dict__,
                "enroll_code": "",
                "printer_id": enrollment.printer_id,
                "printer_token": enrollment.token,
                "mqtt": enrollment.mqtt,
            }
        )
        self._error, self._problem = "", Problem.NONE
        log.info("enrolled with the fleet as printer %s", enrollment.printer_id)

    def _link_changed(self, up: bool) -> None:
        self._state = LinkState.ONLINE if up else LinkState.OFFLINE
        if up:
            self._error, self._problem = "", Problem.NONE
            self._ask_unfit.set()
