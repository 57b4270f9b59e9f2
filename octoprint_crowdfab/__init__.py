"""CrowdFab's OctoPrint plugin: joins this printer to a community print fleet.

Glue only: each mixin method hands over to plain objects (``adapter``, ``runtime``, ``enroll``,
``profile``, ``update``) that are given OctoPrint's ``_printer``, ``_file_manager``, ``_settings`` and
the current printer profile.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional

import flask
import flask_login
import octoprint.plugin
from flask_babel import gettext
from octoprint.access import ADMIN_GROUP, USER_GROUP
from octoprint.access.permissions import Permissions
from octoprint.events import Events

from .adapter import LOCAL, ChangeCallback, OctoPrintPrinter, forward_print_event
from .enroll import EnrollmentAnswer, FleetRequestError, queue_file
from .runtime import PluginConfig, Runtime
from .signin import MemberTokens, sign_in, token_label
from .update import UPDATE_DEFAULTS, update_information
from .webcam import webcam_settings

#: OctoPrint events after which the printer profile in use may say something new.
PROFILE_EVENTS = {
    Events.PRINTER_PROFILE_MODIFIED,
    Events.PRINTER_PROFILE_ADDED,
    Events.PRINTER_PROFILE_DELETED,
    Events.CONNECTED,
}
#: Bumped when the wizard asks something new, so those who saw the old one see it again.
WIZARD_VERSION = 1


def sign_in_refusal(exc: FleetRequestError) -> str:
    """A refused sign-in in the user's language (the fleet's status and ``details`` say which
    refusal it is); else the fleet's own words."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.status == 429 and isinstance(details.get("retry_after_s"), int):
        return gettext("too many failed tries from this address: wait %(seconds)s s and try again") % {
            "seconds": details["retry_after_s"]
        }
    reason = details.get("reason")
    if exc.status == 401 and reason is None:
        return gettext("wrong name or password")  # the one refusal of a name and password
    if exc.status != 401 or reason not in ("unknown", "used", "expired"):
        return str(exc)
    if reason == "used":
        return gettext(
            "this link code was already used: a code works once. Make a new one on your account page."
        )
    if reason == "expired":
        return gettext(
            "this link code has expired (it waits ten minutes). Make a new one on your account page."
        )
    return gettext(
        "the fleet does not know this link code: check it, or make a new one on your account page."
    )


class CrowdFabPlugin(
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.SimpleApiPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.WizardPlugin,
):
    def __init__(self) -> None:
        self._runtime: Optional[Runtime] = None
        self._port: Optional[OctoPrintPrinter] = None
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()
        #: Restarts asked for, and the one the current runtime serves: until they match, the status
        #: says "starting" rather than what the replaced runtime last saw.
        self._wanted = 0
        self._serving = 0
        self._members: Optional[MemberTokens] = None

    # -- life cycle ------------------------------------------------------------------------------

    def on_after_startup(self) -> None:
        self._port = OctoPrintPrinter(self._printer, self._file_manager)
        self._printer.register_callback(ChangeCallback(self._printer_changed))
        self._restart()

    def on_shutdown(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()

    def _restart(self) -> None:
        """Replace the runtime with one for the current settings, off OctoPrint's thread."""

        with self._lock:
            self._wanted += 1
            generation = self._wanted

        def swap() -> None:
            with self._swap_lock:  # one swap at a time: a runtime is closed before the next starts
                if generation < self._wanted:
                    return  # a later restart will read the settings anyway
                runtime = Runtime(
                    self._config(),
                    self._port,
                    Path(self.get_plugin_data_folder()),
                    self._save_enrollment,
                    printer_name=self._settings.global_get(["appearance", "name"]) or "OctoPrint",
                )
                with self._lock:
                    old, self._runtime = self._runtime, runtime
                if old is not None:
                    old.close()
                with self._lock:
                    self._serving = generation
                runtime.start()

        threading.Thread(target=swap, name="crowdfab-restart", daemon=True).start()

    def _config(self) -> PluginConfig:
        profile = self._printer_profile_manager.get_current_or_default()
        return PluginConfig.from_settings(
            self._settings.get,
            profile if isinstance(profile, dict) else None,
            webcam=webcam_settings(self._settings.global_get),
        )

    def _profile_may_have_changed(self) -> None:
        """Tell the fleet of new capabilities: a new runtime's node announces them as it connects."""
        runtime = self._runtime
        if runtime is None or self._config().capabilities == runtime.config.capabilities:
            return
        self._logger.info("the printer profile changed what this printer can print: telling the fleet")
        self._restart()

    def _save_enrollment(self, enrollment: EnrollmentAnswer) -> None:
        self._settings.set(["printer_id"], enrollment.printer_id)
        self._settings.set(["printer_token"], enrollment.token)
        self._settings.set(["enroll_code"], "")
        self._settings.set(["mqtt"], enrollment.mqtt.to_json())
        self._settings.save()

    def _node(self) -> Any:
        runtime = self._runtime
        return runtime.node if runtime is not None else None

    def _printer_changed(self) -> None:
        node = self._node()
        if node is not None:
            node.printer_changed()

    # -- settings --------------------------------------------------------------------------------

    def get_settings_defaults(self) -> dict[str, Any]:
        return {
            "fleet_url": "",
            "enroll_code": "",
            "printer_id": "",
            "printer_token": "",
            "mqtt": {"host": "", "port": 1883, "username": "", "password": "", "tls": False},
            "auto_accept": True,
            "accept_timeout_s": 300,
            "material": "PLA",
            # None: what OctoPrint's printer profile says (these only override it).
            "volume": None,
            "nozzle_diameter": None,
            "mqtt_keepalive_s": 30,
            # Seconds between asks for the waiting jobs this printer's profile cannot take.
            "unfit_check_s": 120,
            # The owner's lending terms: no windows lends it whenever it is idle (see fleet.lending).
            "lending_windows": "",
            "lending_time_zone": "",
            "lending_materials": "",
            "software_update": dict(UPDATE_DEFAULTS),
        }

    def get_settings_restricted_paths(self) -> dict[str, Any]:
        # Secrets: whoever reads them can act as this printer towards the fleet.
        return {
            "admin": [
                ["enroll_code"],
                ["printer_token"],
                ["mqtt", "username"],
                ["mqtt", "password"],
            ]
        }

    def on_settings_save(self, data: dict[str, Any]) -> dict[str, Any]:
        saved = octoprint.plugin.SettingsPlugin.on_settings_save(self, data)
        self._restart()
        return saved

    # -- user interface --------------------------------------------------------------------------

    def is_template_autoescaped(self) -> bool:
        return True

    def get_template_configs(self) -> list[dict[str, Any]]:
        # One view model binds them all: the navbar indicator, the tab (link, jobs, queueing), the settings
        # page and the dialog behind the file list's "Send to fablab queue" action; the wizard has its own.
        return [
            {"type": "navbar", "custom_bindings": True},
            {"type": "tab", "name": gettext("Fablab"), "custom_bindings": True},
            {"type": "settings", "name": gettext("CrowdFab"), "custom_bindings": True},
            {"type": "generic", "template": "crowdfab_send_dialog.jinja2", "custom_bindings": True},
            {"type": "wizard", "name": gettext("Community fleet"), "custom_bindings": True},
        ]

    def get_assets(self) -> dict[str, list[str]]:
        return {"js": ["js/crowdfab_link.js", "js/crowdfab.js"], "css": ["css/crowdfab.css"]}

    # -- first-run wizard ------------------------------------------------------------------------

    def is_wizard_required(self) -> bool:
        """Asked until the printer is enrolled or given a fleet URL and a code some other way."""
        config = PluginConfig.from_settings(self._settings.get)
        return not config.enrolled and not (config.fleet_url and config.enroll_code)

    def get_wizard_version(self) -> int:
        return WIZARD_VERSION

    # -- software update -------------------------------------------------------------------------

    def get_update_information(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return update_information(self._settings.get(["software_update"]) or {}, self._plugin_version)

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, event: str, payload: Any) -> None:
        if event in PROFILE_EVENTS:
            self._profile_may_have_changed()
        node = self._node()
        if node is not None:
            forward_print_event(node, event, payload)

    # -- API -------------------------------------------------------------------------------------

    def get_additional_permissions(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [
            {
                "key": "QUEUE",
                "name": "Queue files on the fleet",
                "description": "Allows sending a file from this OctoPrint to the community fleet's queue.",
                "default_groups": [USER_GROUP, ADMIN_GROUP],
                "roles": ["queue"],
            },
            {
                "key": "ADMIN",
                "name": "Manage the fleet link",
                "description": "Allows enrolling this printer and accepting or declining fleet jobs.",
                "default_groups": [ADMIN_GROUP],
                "roles": ["admin"],
                "dangerous": True,
            },
        ]

    def is_api_protected(self) -> bool:
        return True

    def get_api_commands(self) -> dict[str, list[str]]:
        return {
            "enroll": [],
            "accept": [],
            "decline": [],
            "queue_file": ["path"],
            "sign_in": [],
            "sign_out": [],
            "spools": [],
            "load_spool": ["spool_id"],
            "unload_spool": [],
        }

    def _member_tokens(self) -> MemberTokens:
        if self._members is None:
            self._members = MemberTokens(Path(self.get_plugin_data_folder()) / "member_tokens.json")
        return self._members

    @staticmethod
    def _user() -> Optional[str]:
        """The OctoPrint user asking (None when anonymous): whose fleet token to use."""
        user = flask_login.current_user
        if user is None or user.is_anonymous:
            return None
        name = user.get_name()
        return name if isinstance(name, str) and name else None

    def on_api_get(self, request: Any) -> Any:
        if not Permissions.PLUGIN_CROWDFAB_QUEUE.can() and not Permissions.PLUGIN_CROWDFAB_ADMIN.can():
            flask.abort(403)
        with self._lock:
            runtime = self._runtime if self._serving == self._wanted else None
        if runtime is None:
            return flask.jsonify(
                link="starting",
                error="",
                problem="",
                printer_id=None,
                job=None,
                pending_offer=None,
                signed_in=self._signed_in(),
            )
        return flask.jsonify(dict(runtime.status(), signed_in=self._signed_in()))

    def _signed_in(self) -> bool:
        """Whether the asking user holds a fleet token here (the token itself never leaves the server)."""
        user = self._user()
        return user is not None and self._member_tokens().get(user) is not None

    def on_api_command(self, command: str, data: dict[str, Any]) -> Any:
        if command == "queue_file":
            if not Permissions.PLUGIN_CROWDFAB_QUEUE.can():
                flask.abort(403)
            return self._queue_file(data)
        if command in ("sign_in", "sign_out"):
            if not Permissions.PLUGIN_CROWDFAB_QUEUE.can():
                flask.abort(403)
            return self._sign_in(data) if command == "sign_in" else self._sign_out()
        if command == "spools":
            if not Permissions.PLUGIN_CROWDFAB_QUEUE.can() and not Permissions.PLUGIN_CROWDFAB_ADMIN.can():
                flask.abort(403)
            return self._with_runtime(lambda runtime: runtime.spools())
        if not Permissions.PLUGIN_CROWDFAB_ADMIN.can():
            flask.abort(403)
        if command == "load_spool":
            spool_id = data.get("spool_id")
            if isinstance(spool_id, bool) or not isinstance(spool_id, int) or spool_id < 1:
                return flask.jsonify(error=gettext("spool_id must be a spool's number")), 400
            return self._with_runtime(lambda runtime: runtime.load_spool(spool_id))
        if command == "unload_spool":
            return self._with_runtime(lambda runtime: runtime.unload_spool())
        if command == "enroll":
            for key in ("fleet_url", "enroll_code"):
                if isinstance(data.get(key), str) and data[key]:
                    self._settings.set([key], data[key].strip())
            self._settings.set(["printer_id"], "")
            self._settings.set(["printer_token"], "")
            self._settings.save()
            self._restart()
            return flask.jsonify(started=True), 202
        node = self._node()
        if node is None:
            return flask.jsonify(error=gettext("not connected to the fleet")), 409
        if node.pending_offer() is None:
            return flask.jsonify(error=gettext("no fleet job is waiting for an answer")), 409
        # Accepting downloads the file on the node's worker: answer now, the GET status shows the outcome.
        if command == "accept":
            node.accept_offer()
        else:
            node.decline_offer()
        return flask.jsonify(queued=True), 202

    def _with_runtime(self, call: Callable[[Runtime], dict[str, Any]]) -> Any:
        """The fleet's answer to ``call`` on the serving runtime (the printer's own credentials)."""
        with self._lock:
            runtime = self._runtime if self._serving == self._wanted else None
        if runtime is None or not runtime.config.enrolled:
            return flask.jsonify(error=gettext("this printer has not joined the fleet yet")), 409
        try:
            return flask.jsonify(call(runtime))
        except FleetRequestError as exc:
            return flask.jsonify(error=str(exc)), exc.status or 502

    def _sign_in(self, data: dict[str, Any]) -> Any:
        """Trade the member's fleet name and password (or a link code) for a token kept for this user."""
        fleet_url = self._settings.get(["fleet_url"])
        user = self._user()
        if not fleet_url:
            return flask.jsonify(error=gettext("set fleet_url in the CrowdFab settings first")), 409
        if user is None:
            return flask.jsonify(error=gettext("log in to OctoPrint first")), 403
        fields = {k: data.get(k) for k in ("name", "password", "link_code")}
        if any(v is not None and not isinstance(v, str) for v in fields.values()):
            return flask.jsonify(error=gettext("name, password and link_code must be text")), 400
        printer = self._settings.get(["printer_id"]) or flask.request.host
        try:
            token = sign_in(
                fleet_url,
                token_label(user, printer),
                name=(fields["name"] or "").strip() or None,
                password=fields["password"] or None,
                link_code=(fields["link_code"] or "").strip() or None,
            )
        except FleetRequestError as exc:
            return flask.jsonify(error=sign_in_refusal(exc)), exc.status or 502
        self._member_tokens().put(user, token)
        return flask.jsonify(signed_in=True)

    def _sign_out(self) -> Any:
        """Forget this user's fleet token here (the member may also revoke it on the dashboard)."""
        user = self._user()
        if user is not None:
            self._member_tokens().forget(user)
        return flask.jsonify(signed_in=False)

    def _queue_file(self, data: dict[str, Any]) -> Any:
        fleet_url = self._settings.get(["fleet_url"])
        path, token = data.get("path"), data.get("token")
        user = self._user()
        # The signed-in user's own token, unless the request brings one (an API client's).
        stored = token is None and user is not None
        if stored:
            assert user is not None
            token = self._member_tokens().get(user)
            if token is None:
                return flask.jsonify(error=gettext("sign in to the fleet first"), signed_in=False), 401
        if not fleet_url:
            return flask.jsonify(error=gettext("set fleet_url in the CrowdFab settings first")), 409
        if (
            not isinstance(path, str)
            or not isinstance(token, str)
            or not self._file_manager.file_exists(LOCAL, path)
        ):
            return flask.jsonify(error=gettext("path must name a file in OctoPrint's local storage")), 400
        on_disk = Path(self._file_manager.path_on_disk(LOCAL, path))
        material = data.get("material") if isinstance(data.get("material"), str) else None
        # Absent means one copy; anything else must be a plain int from 1 to 50 (the fleet may cap it lower).
        copies = data.get("copies", 1)
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 50:
            return flask.jsonify(error=gettext("copies must be a whole number from 1 to 50")), 400
        try:
            answer = queue_file(fleet_url, token, on_disk, on_disk.name, material=material, copies=copies)
        except FleetRequestError as exc:
            if stored and exc.status == 401:
                # Revoked on the dashboard (or the member deactivated): this user is signed out here.
                assert user is not None
                self._member_tokens().forget(user)
                refused = gettext("signed out of the fleet (the token was revoked): sign in again")
                return flask.jsonify(error=refused, signed_in=False), 401
            # A refusal (bad file or token) is the member's to fix: pass its status on; else 502.
            return flask.jsonify(error=str(exc)), exc.status or 502
        return flask.jsonify(answer), 201


__plugin_name__ = "CrowdFab"
__plugin_description__ = (
    "Lends this printer to a community print fleet (a fablab's shared queue): joins with the fleet's "
    "address and a one-time code, prints the fleet's jobs, and sends your files to its queue."
)
__plugin_author__ = "The CrowdFab contributors"
__plugin_url__ = UPDATE_DEFAULTS["project_url"]
__plugin_license__ = "AGPL-3.0-or-later"
__plugin_pythoncompat__ = ">=3.9,<4"
__plugin_implementation__ = CrowdFabPlugin()
__plugin_hooks__ = {
    "octoprint.access.permissions": __plugin_implementation__.get_additional_permissions,
    "octoprint.plugin.softwareupdate.check_config": __plugin_implementation__.get_update_information,
}
