"""Printer logins on a shared Mosquitto, kept through its dynamic security plugin.

Several fleet processes can share one broker only if none of them owns its password file. Mosquitto 2's
dynamic security plugin keeps logins and access rules in the broker and takes changes as JSON commands
published to ``$CONTROL/dynamic-security/v1`` (answers come on ``.../response``, matched here by their
``correlationData``). So any fleet process can enroll or revoke a printer, and the broker enforces it at
once: deleting a login disconnects every client using it.

What the fleet keeps there (docs/broker.md, "A shared broker"):

- the role ``crowdfab-fleet``: read what every node publishes (plain and ``$share/<group>/``
  subscriptions), send commands, write the retained channels;
- the role ``crowdfab-dynsec-admin``: the plugin's control topics;
- one login and one role a printer: the login's username is the printer id, its role
  ``crowdfab-printer-<id>`` lets it publish only its own node channels and read only its own commands
  (Mosquitto 2.0's plugin has no ``%u`` patterns, hence a role a printer).

The module has two halves: pure builders of commands, ACLs and a whole starting configuration
(:func:`initial_config`, what ``crowdfab-fleet broker init`` writes), and :class:`DynsecAccounts`,
which sends commands over a given link (``fleet.mqtt.MqttLink``) and waits for the answers.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Callable, Optional, Protocol

from .errors import Invalid, Unavailable
from .protocol import NODE_PUBLISHES, PRINTER_ID_RE, RETAINED, Channel, topic, wildcard

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
FLEET_ROLE = "crowdfab-fleet"
ADMIN_ROLE = "crowdfab-dynsec-admin"
PRINTER_ROLE_PREFIX = "crowdfab-printer-"
#: How long a command may take before the broker counts as unreachable.
DEFAULT_TIMEOUT_S = 5.0
#: Answers that mean "already as wanted": a repeated command changes nothing.
_ALREADY = frozenset({"Client already exists", "Role already exists", "ACL with this topic already exists"})
_GONE = frozenset({"Client not found", "Role not found"})
_FLEET_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HASH_RE = re.compile(r"^\$7\$([0-9]+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")

Command = dict[str, Any]


def _acl(acltype: str, topic_filter: str, allow: bool = True) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic_filter, "priority": 0, "allow": allow}


def fleet_acls() -> list[dict[str, Any]]:
    """What a fleet process may do: read every node's channels (alone or in any share group), write
    commands and the retained channels (to clear what a removed printer left)."""
    channels = sorted(NODE_PUBLISHES, key=lambda c: c.value)
    acls = []
    for channel in channels:
        acls.append(_acl("publishClientReceive", wildcard(channel)))
        acls.append(_acl("subscribePattern", wildcard(channel)))
        acls.append(_acl("subscribePattern", f"$share/+/{wildcard(channel)}"))
    for channel in sorted(RETAINED, key=lambda c: c.value):
        acls.append(_acl("publishClientSend", wildcard(channel)))
    acls.append(_acl("publishClientSend", wildcard(Channel.CMD)))
    return acls


def admin_acls() -> list[dict[str, Any]]:
    """The plugin's control topics: send commands, read the answers."""
    control = f"{CONTROL_TOPIC.rsplit('/', 1)[0]}/#"
    return [
        _acl("publishClientSend", control),
        _acl("publishClientReceive", control),
        _acl("subscribePattern", control),
    ]


def printer_role(printer_id: str) -> str:
    if not PRINTER_ID_RE.match(printer_id):
        raise Invalid(f"not a valid printer id: {printer_id!r}", field="printer_id")
    return PRINTER_ROLE_PREFIX + printer_id


def printer_acls(printer_id: str) -> list[dict[str, Any]]:
    """One printer's own channels: publish its node channels, read its commands; nothing else."""
    acls = [
        _acl("publishClientSend", topic(printer_id, channel))
        for channel in sorted(NODE_PUBLISHES, key=lambda c: c.value)
    ]
    cmd = topic(printer_id, Channel.CMD)
    acls += [_acl("subscribeLiteral", cmd), _acl("publishClientReceive", cmd)]
    return acls


def add_printer_commands(printer_id: str, password: str) -> list[Command]:
    """Commands giving ``printer_id`` a login with ``password`` and its role, replacing a stale one.

    A login of that name can only be left over (the fleet's database gave the id to no other printer),
    so it is deleted first; "not found" answers to that are expected.
    """
    role = printer_role(printer_id)
    return [
        {"command": "deleteClient", "username": printer_id},
        {"command": "deleteRole", "rolename": role},
        {"command": "createRole", "rolename": role, "acls": printer_acls(printer_id)},
        {
            "command": "createClient",
            "username": printer_id,
            "password": password,
            "roles": [{"rolename": role, "priority": 0}],
            "textname": f"CrowdFab printer {printer_id}",
        },
    ]


def remove_printer_commands(printer_id: str) -> list[Command]:
    """Commands removing a printer's login (the broker disconnects it at once) and its role."""
    return [
        {"command": "deleteClient", "username": printer_id},
        {"command": "deleteRole", "rolename": printer_role(printer_id)},
    ]


def _role_entry(name: str, text: str, acls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rolename": name, "textname": text, "acls": acls}


def _client_entry(username: str, password_hash: str, roles: list[str], text: str) -> dict[str, Any]:
    """A login as the plugin stores it, from a Mosquitto ``$7$`` hash (the same PBKDF2-SHA512)."""
    found = _HASH_RE.match(password_hash)
    if found is None:
        raise Invalid(f"the password of {username!r} is not a mosquitto $7$ hash", field="password_hash")
    iterations, salt, digest = found.groups()
    if len(base64.b64decode(salt)) != 12 or len(base64.b64decode(digest)) != 64:
        raise Invalid(
            f"the password hash of {username!r} has the wrong salt or digest size", field="password_hash"
        )
    return {
        "username": username,
        "textname": text,
        "password": digest,
        "salt": salt,
        "iterations": int(iterations),
        "roles": [{"rolename": role, "priority": 0} for role in roles],
        "groups": [],
    }


def initial_config(fleet_username: str, fleet_password_hash: str, printers: Iterable[tuple[str, str]]) -> str:
    """A whole dynamic security file for a new shared broker, as JSON text.

    Everything not granted is denied (no anonymous access to anything, no default rights); the fleet's
    login holds both fleet roles; each of ``printers`` (printer id, ``$7$`` hash) gets its login and role,
    so a fleet that ran its own broker keeps its printers when it moves to a shared one.
    """
    if not _FLEET_USER_RE.match(fleet_username) or PRINTER_ID_RE.match(fleet_username):
        raise Invalid(
            "the fleet's broker username may use letters, digits and _ . @ - (1-64 characters), and must not "
            "be a possible printer id (give it an _ or a capital letter)",
            field="fleet_user",
        )
    clients = [
        _client_entry(
            fleet_username, fleet_password_hash, [FLEET_ROLE, ADMIN_ROLE], "CrowdFab fleet processes"
        )
    ]
    roles = [
        _role_entry(FLEET_ROLE, "what a CrowdFab fleet process reads and sends", fleet_acls()),
        _role_entry(ADMIN_ROLE, "administers the dynamic security plugin", admin_acls()),
    ]
    for printer_id, password_hash in printers:
        role = printer_role(printer_id)
        clients.append(_client_entry(printer_id, password_hash, [role], f"CrowdFab printer {printer_id}"))
        roles.append(_role_entry(role, f"printer {printer_id}'s own channels", printer_acls(printer_id)))
    config = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(config, indent=1) + "\n"


def mosquitto_conf_lines(plugin: str, config_file: str, port: int = 1883) -> str:
    """What ``mosquitto.conf`` needs for the plugin (printed by ``broker init``)."""
    return "\n".join(
        [
            "per_listener_settings false",
            "allow_anonymous false",
            f"listener {port}",
            f"plugin {plugin}",
            f"plugin_opt_config_file {config_file}",
            "",
        ]
    )


#: Where Debian (and other multiarch systems) and a source install put the plugin.
PLUGIN_PLACES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


def find_plugin() -> Optional[str]:
    """The dynamic security plugin on this machine, or None."""
    return next((place for place in PLUGIN_PLACES if os.path.isfile(place)), None)


# -- over the wire ----------------------------------------------------------------------------------


class Link(Protocol):
    """What the accounts need of an MQTT connection (``fleet.mqtt.MqttLink`` has it)."""

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> object: ...

    def wait_connected(self, timeout: float) -> bool: ...


class DynsecAccounts:
    """Printer logins on a shared broker, through a link logged in with the plugin's admin role.

    Each call sends one message of commands and waits for its answers; a broker that does not answer
    within ``timeout_s``, or refuses a command, raises :class:`~fleet.errors.Unavailable` naming it.
    Calls come from request threads, never from the link's own network thread (which delivers answers).
    """

    def __init__(self, link: Link, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._waiting: set[str] = set()
        link.subscribe(RESPONSE_TOPIC, self._on_response, 1)

    def _on_response(self, _topic: str, payload: bytes) -> None:
        # Every admin on the broker sees every answer (QoS 0, one topic): keep only those we wait for.
        try:
            responses = json.loads(payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("dynamic security: an answer that is not the plugin's JSON was ignored")
            return
        if not isinstance(responses, list):
            return
        with self._cond:
            for response in responses:
                corr = response.get("correlationData") if isinstance(response, dict) else None
                if isinstance(corr, str):
                    key = corr.split(":", 1)[0]
                    if key in self._waiting:
                        self._answers.setdefault(key, []).append(response)
            self._cond.notify_all()

    def run(self, commands: list[Command], *, tolerate: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; their answers, in order. An error not in ``tolerate`` raises."""
        if not commands:
            return []
        key = uuid.uuid4().hex
        sent = [dict(c, correlationData=f"{key}:{i}") for i, c in enumerate(commands)]
        if not self.link.wait_connected(self.timeout_s):
            raise Unavailable(
                f"the shared MQTT broker is not reachable (no connection within {self.timeout_s:.0f} s)",
                field="broker",
            )
        with self._cond:
            self._waiting.add(key)
        try:
            self.link.publish(CONTROL_TOPIC, json.dumps({"commands": sent}).encode(), qos=1)
            with self._cond:
                done = self._cond.wait_for(
                    lambda: len(self._answers.get(key, ())) >= len(sent), self.timeout_s
                )
                answers = self._answers.pop(key, [])
        finally:
            with self._cond:
                self._waiting.discard(key)
                self._answers.pop(key, None)
        if not done:
            names = ", ".join(c["command"] for c in commands)
            raise Unavailable(
                f"the shared MQTT broker did not answer {names} within {self.timeout_s:.0f} s (is its "
                "dynamic security plugin loaded, and may the fleet's login use $CONTROL?)",
                field="broker",
            )
        answers.sort(key=lambda a: int(str(a["correlationData"]).split(":", 1)[1]))
        for answer in answers:
            error = answer.get("error")
            if error and error not in tolerate:
                raise Unavailable(
                    f"the shared MQTT broker refused {answer.get('command')}: {error}", field="broker"
                )
        return answers

    def add_printer(self, printer_id: str, password: str) -> None:
        """Give a printer its login and role (replacing a stale login of the same name)."""
        self.run(add_printer_commands(printer_id, password), tolerate=_GONE)
        log.info("shared broker: login for printer %s created", printer_id)

    def remove_printer(self, printer_id: str) -> None:
        """Remove a printer's login and role; the broker disconnects it at once. Absent ones are fine."""
        self.run(remove_printer_commands(printer_id), tolerate=_GONE)
        log.info("shared broker: login of printer %s removed (disconnected)", printer_id)

    def ensure_fleet_roles(self) -> None:
        """Create the fleet's two roles if missing, and add any rule an older fleet did not have."""
        wanted = {FLEET_ROLE: fleet_acls(), ADMIN_ROLE: admin_acls()}
        commands: list[Command] = []
        for role, acls in wanted.items():
            commands.append({"command": "createRole", "rolename": role, "acls": acls})
            commands += [dict(acl, command="addRoleACL", rolename=role) for acl in acls]
        self.run(commands, tolerate=_ALREADY)

    def printer_logins(self) -> set[str]:
        """The printer ids that hold a role of ours on the broker."""
        answers = self.run([{"command": "listRoles", "count": -1}])
        names = answers[0].get("data", {}).get("roles", [])
        return {
            name[len(PRINTER_ROLE_PREFIX) :]
            for name in names
            if isinstance(name, str) and name.startswith(PRINTER_ROLE_PREFIX)
        }

    def sync(
        self, revoked: Callable[[], Iterable[str]], active: Callable[[], Iterable[str]]
    ) -> tuple[set[str], set[str]]:
        """Remove the logins of revoked printers; returns (removed, missing).

        Only printers the database holds revoked lose their login here: a printer being enrolled right
        now already has its login but not yet its committed row, and must keep it. ``missing`` are
        enrolled printers without a login on this broker: their passwords exist only hashed, so they
        cannot be recreated over this API (``broker init`` writes them into a new broker's file;
        enrolling the printer again gives it a new login).
        """
        present = self.printer_logins()
        removed = present & set(revoked())
        commands = [c for printer_id in sorted(removed) for c in remove_printer_commands(printer_id)]
        self.run(commands, tolerate=_GONE)
        missing = set(active()) - present
        if removed:
            log.info("shared broker: removed the logins of %d revoked printer(s)", len(removed))
        if missing:
            log.warning(
                "shared broker: %d enrolled printer(s) have no login there and cannot connect (e.g. %s): "
                "enroll them again, or create the broker's file with 'crowdfab-fleet broker init'",
                len(missing),
                ", ".join(sorted(missing)[:5]),
            )
        return removed, missing
