"""Who may do what: every API endpoint and every dashboard page and action, tried as everyone.

The table below is the policy. Each row is one request; each role gets the status it must get:

- ``anonymous``: no token, no session. ``member``: alice, who owns the job (or is the member) the
  request names. ``other``: bob, another member. ``manager``: a lab manager. ``printer``: the enrolled
  printer the job is dispatched to; ``other_printer``: another enrolled printer.
- 401: no valid credentials (no token, a bad one, or the wrong kind: a printer's token on a
  member's endpoint and the reverse). 403: signed in, but not allowed. 404: only for what does not
  exist. Existence is not hidden behind 404: job ids and printer ids are public to members (the
  queue and the printer board list them), so another member's job answers 403, not 404.
- The dashboard sends an anonymous visitor's page request to the sign-in page (``SIGNIN``) and
  answers an anonymous action (a POST) with 401; a POST without the session's CSRF token is 400.

A refused request must change nothing: the database (every row of every table, apart from the
columns that record a token's last use) and the blob store are compared before and after. A row
marked ``changes`` must change the database when allowed, so an allowed answer is the real thing.
The first test checks the table names every rule of the app, so an endpoint added without a row
fails here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import pytest
from werkzeug.exceptions import HTTPException

from fleet.auth import hash_token
from fleet.models import MemberChanges, Role
from fleet.states import JobState
from fleet.store import PlateSnapshot

from .conftest import (
    CAPS,
    GCODE,
    PASSWORD,
    VOLUME,
    Browser,
    World,
    blob_files,
    db_state,
    gcode_with_thumbnail,
)

SIGNIN = "sign-in page"  # a redirect to /signin
Expect = Union[int, str]
API_ROLES = ("anonymous", "member", "other", "manager", "printer", "other_printer")
WEB_ROLES = ("anonymous", "member", "other", "manager")
PERSON = {"member": "alice", "other": "bob", "manager": "manager"}
NEW_PASSWORD = "a brand new passphrase"


# -- who gets what --------------------------------------------------------------------------------


def public(ok: int) -> dict[str, Expect]:
    return dict.fromkeys(API_ROLES, ok)


def signed_in(ok: int) -> dict[str, Expect]:
    return {**public(401), "member": ok, "other": ok, "manager": ok}


def owner(ok: int) -> dict[str, Expect]:
    return {**signed_in(ok), "other": 403}


def manager(ok: int) -> dict[str, Expect]:
    return {**signed_in(403), "manager": ok}


def printer(ok: int) -> dict[str, Expect]:
    return {**public(401), "printer": ok, "other_printer": 403}


def page(ok: Expect = 200, anonymous: Expect = SIGNIN) -> dict[str, Expect]:
    return {"anonymous": anonymous, "member": ok, "other": ok, "manager": ok}


def owner_page(ok: Expect = 200, anonymous: Expect = SIGNIN) -> dict[str, Expect]:
    return {**page(ok, anonymous), "other": 403}


def manager_page(ok: Expect = 200, anonymous: Expect = SIGNIN) -> dict[str, Expect]:
    return {**page(403, anonymous), "manager": ok}


def action(ok: Expect = 303) -> dict[str, Expect]:
    return page(ok, anonymous=401)


def owner_action(ok: Expect = 303) -> dict[str, Expect]:
    return owner_page(ok, anonymous=401)


def manager_action(ok: Expect = 303) -> dict[str, Expect]:
    return manager_page(ok, anonymous=401)


# -- what each request needs ----------------------------------------------------------------------

Setup = Callable[[World, str], dict[str, Any]]
Send = Callable[[World, dict[str, Any]], dict[str, Any]]


def cached(key: str, make: Callable[[World], dict[str, Any]]) -> Setup:
    """A setup made once per world (for requests that change nothing)."""

    def setup(world: World, role: str) -> dict[str, Any]:
        if key not in world.cache:
            world.cache[key] = make(world)
        return dict(world.cache[key])

    return setup


def fresh(make: Callable[[World], dict[str, Any]]) -> Setup:
    """A setup made anew for every role (for requests that change what they act on)."""
    return lambda world, role: make(world)


def job_in(state: JobState, content: bytes = GCODE) -> Callable[[World], dict[str, Any]]:
    return lambda world: {"job": world.job(state, content=content).id}


def alice(world: World) -> dict[str, Any]:
    return {"member": world.people["alice"].id}


def new_printer(world: World) -> dict[str, Any]:
    return {"printer": world.printer().id}


def dispatched(world: World) -> dict[str, Any]:
    job = world.job(JobState.QUEUED)
    world.run(job, world.printers["printer"], JobState.ASSIGNED)
    return {"printer": world.printers["printer"].id, "job": job.id}


#: The start of a JPEG: what a printer's webcam sends (the fleet reads the type from these bytes).
PHOTO = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def photographed(world: World) -> dict[str, Any]:
    """Alice's job dispatched to the printer (the one the file row uses), with the photo of its plate."""
    made = cached("dispatched", dispatched)(world, "")
    photo = PlateSnapshot(made["printer"], made["job"], "image/jpeg", world.service.clock(), PHOTO)
    world.service.store.add_snapshot(photo)
    return made


def grant_to_alice(world: World) -> dict[str, Any]:
    target = world.printer(restricted=True)
    world.service.members.grant(world.people["manager"], world.people["alice"].id, target.id)
    return {"member": world.people["alice"].id, "printer": target.id}


def as_fresh_member(world: World, role: str) -> dict[str, Any]:
    """A new member is the target; as ``member`` the request comes from that member itself."""
    member, token = world.member()
    ctx: dict[str, Any] = {"member": member.id}
    if role == "member":
        ctx["token"] = token
    return ctx


def fresh_browser(world: World, role: str) -> dict[str, Any]:
    """A session of its own, signed in as the role's person (anonymous: none)."""
    browser = Browser(world.app)
    if role != "anonymous":
        browser.signed_in(PERSON[role])
    return {"browser": browser}


def own_account(world: World, role: str) -> dict[str, Any]:
    """A fresh person of the role's kind, signed in: the account page only ever acts on its own."""
    browser = Browser(world.app)
    if role != "anonymous":
        member, _ = world.member(Role.MANAGER if role == "manager" else Role.MEMBER, password=True)
        browser.signed_in(member.name)
    return {"browser": browser}


def own_named_token(world: World, role: str) -> dict[str, Any]:
    """A fresh member with a second, named token: the target; as ``member`` the member asks itself."""
    ctx = as_fresh_member(world, role)
    named = world.service.members.issue_named_token(world.service.store.get_member(ctx["member"]), "laptop")
    return {**ctx, "token_id": hash_token(named)}


def account_with_token(world: World, role: str) -> dict[str, Any]:
    """A fresh person of the role's kind, signed in, with a named token of their own to revoke."""
    browser = Browser(world.app)
    target = world.people["alice"]
    if role != "anonymous":
        target, _ = world.member(Role.MANAGER if role == "manager" else Role.MEMBER, password=True)
        browser.signed_in(target.name)
    named = world.service.members.issue_named_token(target, "laptop")
    return {"browser": browser, "token_id": hash_token(named)}


def alices_channel(world: World) -> dict[str, Any]:
    alice = world.people["alice"]
    for old in world.service.store.channels_of(alice.id):  # within the per-member limit, row after row
        world.service.store.delete_channel(alice.id, old.id)
    made = world.service.notifications.add_channel(world.people["alice"], "mail", CHANNEL_URL, ["job_done"])
    return {"channel": made.id}


def account_with_channel(world: World, role: str) -> dict[str, Any]:
    """A fresh person of the role's kind, signed in, with a channel of their own to change."""
    browser = Browser(world.app)
    target = world.people["alice"]
    if role != "anonymous":
        target, _ = world.member(Role.MANAGER if role == "manager" else Role.MEMBER, password=True)
        browser.signed_in(target.name)
    made = world.service.notifications.add_channel(target, "mail", CHANNEL_URL, ["job_done"])
    return {"browser": browser, "channel": made.id}


def a_webhook(world: World) -> dict[str, Any]:
    hook, _ = world.service.notifications.add_webhook(world.people["manager"], HOOK_URL, ["job_done"])
    return {"webhook": hook.id}


def webhook_with_delivery(world: World) -> dict[str, Any]:
    """A webhook for "spool low", and one delivery of it waiting."""
    hook, _ = world.service.notifications.add_webhook(world.people["manager"], HOOK_URL, ["spool_low"])
    world.service.notifications.spool_low(world.printer().id, "PLA", 10, occurrence=world.unique("spool"))
    delivery = world.service.store.webhook_deliveries(hook.id).items[0]
    return {"webhook": hook.id, "delivery": delivery.id}


#: Another member's channel is not there for them (channel ids are nobody else's business).
OWN_CHANNEL = {**public(401), "member": 200, "other": 404, "manager": 404}
CHANNEL_URL = "json://127.0.0.1:9/crowdfab"
HOOK_URL = "https://hooks.lab.test/crowdfab"


def signs_in(world: World) -> dict[str, Any]:
    member, _ = world.member(password=True)
    return {"name": member.name}


def upload(content: bytes = GCODE, name: str = "part.gcode", **fields: str) -> Send:
    return lambda world, ctx: {"data": {"file": (io.BytesIO(content), name), **fields}}


def json_body(make: Callable[[World, dict[str, Any]], Any]) -> Send:
    return lambda world, ctx: {"json": make(world, ctx)}


def form(make: Callable[[World, dict[str, Any]], dict[str, Any]]) -> Send:
    return lambda world, ctx: {"data": make(world, ctx)}


def settings_form(world: World, ctx: dict[str, Any]) -> dict[str, Any]:
    """The settings form as the page fills it in: the current values, unchanged."""
    lab = world.service.lab.settings().to_dict()
    limits = lab["rules"]["material_limits"]
    data: dict[str, Any] = {
        "max_upload_bytes": str(lab["max_upload_bytes"]),
        "snapshot_max_bytes": str(lab["snapshot_max_bytes"]),
        "snapshot_retention_days": str(lab["snapshot_retention_days"]),
        "refused_commands": " ".join(sorted(lab["rules"]["refused_commands"])),
        "material": list(limits),
    }
    if lab["approval_required"]:
        data["approval_required"] = "on"
    for name, values in limits.items():
        data[f"hotend.{name}"] = str(values["hotend_max_c"])
        data[f"bed.{name}"] = str(values["bed_max_c"])
    return data


PRICES = {"per_gram": {"PLA": "0.05"}, "default_per_hour": "1.20", "minimum": "0.50"}


SPOOL = {
    "material": "PETG",
    "colour_name": "black",
    "colour_hex": "#1a1a1a",
    "net_grams": 1000,
    "price_per_kg": 2990,
}


def new_spool(world: World) -> dict[str, Any]:
    """A full spool on a shelf."""
    return {"spool": world.service.spools.add_spool(world.people["manager"], SPOOL).id}


def spool_on_printer(world: World) -> dict[str, Any]:
    """A spool loaded on a printer of its own (made for it: a printer holds one spool)."""
    made = new_spool(world)
    target = world.printer()
    world.service.spools.load(world.people["manager"], made["spool"], target.id)
    return {**made, "printer": target.id}


def own_printer_with_spool(world: World) -> dict[str, Any]:
    """The token's printer with a spool loaded on it (unloaded first if one is there)."""
    printer_id = world.printers["printer"].id
    world.service.spools.unload_own(world.printers["printer"], printer_id)
    made = new_spool(world)
    world.service.spools.load(world.people["manager"], made["spool"], printer_id)
    return {**made, "printer": printer_id}


def own_printer_and_shelf_spool(world: World) -> dict[str, Any]:
    """The token's printer, emptied, and a spool on a shelf to load on it."""
    printer_id = world.printers["printer"].id
    world.service.spools.unload_own(world.printers["printer"], printer_id)
    return {**new_spool(world), "printer": printer_id}


def new_group(world: World) -> dict[str, Any]:
    return {"group": world.service.quotas.create_group(world.people["manager"], world.unique("g")).id}


def group_with_quota(world: World) -> dict[str, Any]:
    made = new_group(world)
    world.service.quotas.set_quota(
        world.people["manager"], {"period": "week", "grams": "50"}, group_id=made["group"]
    )
    return {**made, "period": "week"}


def alice_with_quota(world: World) -> dict[str, Any]:
    alice_id = world.people["alice"].id
    world.service.quotas.set_quota(
        world.people["manager"], {"period": "day", "grams": "50"}, member_id=alice_id
    )
    return {"member": alice_id, "period": "day"}


def alice_and_group(world: World) -> dict[str, Any]:
    return {"member": world.people["alice"].id, **new_group(world)}


@dataclass(frozen=True)
class Row:
    method: str
    #: The request's path; ``{job}``, ``{printer}`` and ``{member}`` come from the setup.
    path: str
    expect: Mapping[str, Expect]
    setup: Setup = field(default=lambda world, role: {})
    send: Send = field(default=lambda world, ctx: {})
    #: An allowed request changes the database.
    changes: bool = False
    note: str = ""

    @property
    def web(self) -> bool:
        return not self.path.startswith("/api/")

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.note}]" if self.note else "")


API = "/api/v1"
TABLE: tuple[Row, ...] = (
    # -- the API: meta ----------------------------------------------------------------------------
    Row("GET", f"{API}/health", public(200)),
    Row("GET", f"{API}/openapi.json", public(200)),
    Row("GET", f"{API}/metrics", manager(200)),
    Row("GET", f"{API}/me", signed_in(200)),
    Row("GET", f"{API}/stats", signed_in(200), note="by member, a member gets only their own row"),
    Row("GET", f"{API}/stats.csv", signed_in(200), note="by member, a member gets only their own row"),
    Row("GET", f"{API}/settings", signed_in(200)),
    Row(
        "PATCH",
        f"{API}/settings",
        manager(200),
        send=json_body(lambda w, c: {"max_copies": 21}),
        changes=True,
    ),
    # -- jobs ---------------------------------------------------------------------------------------
    Row("POST", f"{API}/jobs", signed_in(201), send=upload(), changes=True),
    Row("POST", f"{API}/analyze", signed_in(200), send=upload()),
    Row("GET", f"{API}/jobs", manager(200), note="everyone's"),
    Row("GET", f"{API}/jobs?member_id={{member}}", owner(200), setup=cached("alice", alice), note="alice's"),
    Row("GET", f"{API}/jobs/mine", signed_in(200)),
    Row("GET", f"{API}/queue", signed_in(200)),
    Row("GET", f"{API}/jobs/{{job}}", owner(200), setup=cached("queued", job_in(JobState.QUEUED))),
    Row("GET", f"{API}/jobs/{{job}}/history", owner(200), setup=cached("queued", job_in(JobState.QUEUED))),
    Row(
        "GET",
        f"{API}/jobs/{{job}}/thumbnail",
        owner(200),
        setup=cached("thumb", job_in(JobState.QUEUED, gcode_with_thumbnail())),
    ),
    Row("GET", f"{API}/jobs/{{job}}/snapshot", owner(200), setup=cached("photo", photographed)),
    Row("POST", f"{API}/jobs/{{job}}/cancel", owner(200), setup=fresh(job_in(JobState.QUEUED)), changes=True),
    Row("POST", f"{API}/jobs/{{job}}/pause", owner(202), setup=cached("printing", job_in(JobState.PRINTING))),
    Row("POST", f"{API}/jobs/{{job}}/resume", owner(202), setup=cached("paused", job_in(JobState.PAUSED))),
    Row(
        "POST",
        f"{API}/jobs/{{job}}/approve",
        manager(200),
        setup=fresh(job_in(JobState.AWAITING_APPROVAL)),
        changes=True,
    ),
    Row(
        "POST",
        f"{API}/jobs/{{job}}/reject",
        manager(200),
        setup=fresh(job_in(JobState.AWAITING_APPROVAL)),
        changes=True,
    ),
    Row(
        "PUT",
        f"{API}/jobs/{{job}}/priority",
        manager(200),
        setup=fresh(job_in(JobState.QUEUED)),
        send=json_body(lambda w, c: {"priority": 5}),
        changes=True,
    ),
    # -- printers -----------------------------------------------------------------------------------
    Row("GET", f"{API}/printers", signed_in(200)),
    Row(
        "POST",
        f"{API}/printers",
        manager(201),
        send=json_body(lambda w, c: {"id": w.unique("new"), "volume": VOLUME}),
        changes=True,
    ),
    Row("GET", f"{API}/printers/{{printer}}", signed_in(200), setup=cached("printer", new_printer)),
    Row(
        "PATCH",
        f"{API}/printers/{{printer}}",
        manager(200),
        setup=fresh(new_printer),
        send=json_body(lambda w, c: {"material": "PETG"}),
        changes=True,
    ),
    Row(
        "POST",
        f"{API}/printers/{{printer}}/bed-cleared",
        owner(200),
        setup=fresh(lambda w: {"printer": w.plate_of_alice().id}),
        changes=True,
        note="alice's print on the plate",
    ),
    Row(
        "POST",
        f"{API}/printers/{{printer}}/revoke",
        manager(200),
        setup=fresh(lambda w: {"printer": w.enrolled()[0].id}),
        changes=True,
    ),
    Row(
        "GET",
        f"{API}/printers/{{printer}}/jobs/{{job}}/file",
        printer(200),
        setup=cached("dispatched", dispatched),
        note="alice's job, dispatched to printer",
    ),
    Row(
        "PUT",
        f"{API}/printers/{{printer}}/jobs/{{job}}/snapshot",
        printer(204),
        setup=cached("dispatched", dispatched),
        send=lambda w, c: {"data": PHOTO, "content_type": "image/jpeg"},
        changes=True,
        note="the photo of alice's job's plate, from the printer it ran on",
    ),
    Row(
        "GET",
        f"{API}/printers/{{printer}}/unfit",
        printer(200),
        setup=cached("dispatched", dispatched),
        note="the printer's own token; another printer's is refused (tests/api/test_unfit.py)",
    ),
    Row(
        "POST",
        f"{API}/printers/{{printer}}/snapshot",
        manager(202),
        setup=cached("plate", lambda w: {"printer": w.plate_of_alice().id}),
        note="ask for a photo of alice's print on the plate",
    ),
    # -- enrollment ---------------------------------------------------------------------------------
    Row("POST", f"{API}/enroll-codes", manager(201), changes=True),
    Row(
        "POST",
        f"{API}/printers/enroll",
        public(201),
        setup=fresh(lambda w: {"code": w.service.enrollment.create_enrollment_code(None)[0]}),
        send=json_body(lambda w, c: {"code": c["code"], "name": w.unique("node"), "capabilities": CAPS}),
        changes=True,
        note="a valid code is the only proof",
    ),
    # -- members ------------------------------------------------------------------------------------
    Row("GET", f"{API}/members", manager(200)),
    Row(
        "POST",
        f"{API}/members",
        manager(201),
        send=json_body(lambda w, c: {"name": w.unique("n")}),
        changes=True,
    ),
    Row("GET", f"{API}/members/{{member}}", owner(200), setup=cached("alice", alice)),
    Row(
        "PATCH",
        f"{API}/members/{{member}}",
        manager(200),
        setup=as_fresh_member,
        send=json_body(lambda w, c: {"role": "manager"}),
        changes=True,
        note="a member promoting themselves",
    ),
    Row("POST", f"{API}/members/{{member}}/token", owner(200), setup=as_fresh_member, changes=True),
    Row(
        "POST",
        f"{API}/tokens",
        public(201),
        setup=fresh(signs_in),
        send=json_body(lambda w, c: {"name": c["name"], "password": PASSWORD, "label": "laptop"}),
        changes=True,
        note="a name and password are the credentials; any header is ignored",
    ),
    Row("GET", f"{API}/members/{{member}}/tokens", owner(200), setup=cached("alice", alice)),
    Row(
        "DELETE",
        f"{API}/members/{{member}}/tokens/{{token_id}}",
        owner(204),
        setup=own_named_token,
        changes=True,
    ),
    Row(
        "PUT",
        f"{API}/members/{{member}}/password",
        owner(204),
        setup=as_fresh_member,
        send=json_body(lambda w, c: {"password": NEW_PASSWORD}),
        changes=True,
    ),
    Row(
        "PUT",
        f"{API}/members/{{member}}/printers/{{printer}}",
        manager(200),
        setup=fresh(lambda w: {"member": w.people["alice"].id, "printer": w.printer(restricted=True).id}),
        changes=True,
    ),
    Row(
        "DELETE",
        f"{API}/members/{{member}}/printers/{{printer}}",
        manager(200),
        setup=fresh(grant_to_alice),
        changes=True,
    ),
    # -- spools -----------------------------------------------------------------------------------------
    Row("GET", f"{API}/spools", signed_in(200)),
    Row("POST", f"{API}/spools", manager(201), send=json_body(lambda w, c: SPOOL), changes=True),
    Row("GET", f"{API}/spools/{{spool}}", signed_in(200), setup=cached("spool", new_spool)),
    Row(
        "PATCH",
        f"{API}/spools/{{spool}}",
        manager(200),
        setup=fresh(new_spool),
        send=json_body(lambda w, c: {"remaining_grams": 500}),
        changes=True,
    ),
    Row(
        "POST",
        f"{API}/spools/{{spool}}/load",
        manager(200),
        setup=fresh(lambda w: {**new_spool(w), "target": w.printer().id}),
        send=json_body(lambda w, c: {"printer_id": c["target"]}),
        changes=True,
    ),
    Row(
        "POST",
        f"{API}/spools/{{spool}}/unload",
        manager(200),
        setup=fresh(spool_on_printer),
        send=json_body(lambda w, c: {}),
        changes=True,
    ),
    Row(
        "GET",
        f"{API}/printers/{{printer}}/spool",
        printer(200),
        setup=cached("own-printer", lambda w: {"printer": w.printers["printer"].id}),
        note="the printer's own token: what its owner sees in OctoPrint's tab",
    ),
    Row(
        "PUT",
        f"{API}/printers/{{printer}}/spool",
        printer(200),
        setup=fresh(own_printer_and_shelf_spool),
        send=json_body(lambda w, c: {"spool_id": c["spool"]}),
        changes=True,
        note="the owner loads a shelf spool on their own printer, never on another",
    ),
    Row(
        "DELETE",
        f"{API}/printers/{{printer}}/spool",
        printer(200),
        setup=fresh(own_printer_with_spool),
        changes=True,
    ),
    # -- prices, the ledger, groups and quotas ----------------------------------------------------------
    Row("GET", f"{API}/prices", signed_in(200)),
    Row("PUT", f"{API}/prices", manager(200), send=json_body(lambda w, c: PRICES), changes=True),
    Row("GET", f"{API}/jobs/{{job}}/cost", owner(200), setup=cached("queued", job_in(JobState.QUEUED))),
    Row("GET", f"{API}/ledger", signed_in(200), note="one's own; a manager's: everyone's"),
    Row(
        "GET", f"{API}/ledger?member_id={{member}}", owner(200), setup=cached("alice", alice), note="alice's"
    ),
    Row("GET", f"{API}/ledger/export?month=2026-11", manager(200)),
    Row(
        "POST",
        f"{API}/jobs/{{job}}/lift-quotas",
        manager(200),
        setup=fresh(job_in(JobState.QUEUED)),
        changes=True,
    ),
    Row("GET", f"{API}/groups", signed_in(200)),
    Row(
        "POST",
        f"{API}/groups",
        manager(201),
        send=json_body(lambda w, c: {"name": w.unique("g")}),
        changes=True,
    ),
    Row(
        "PATCH",
        f"{API}/groups/{{group}}",
        manager(200),
        setup=fresh(new_group),
        send=json_body(lambda w, c: {"priority": 3}),
        changes=True,
    ),
    Row("DELETE", f"{API}/groups/{{group}}", manager(204), setup=fresh(new_group), changes=True),
    Row(
        "PUT",
        f"{API}/members/{{member}}/group",
        manager(200),
        setup=fresh(alice_and_group),
        send=json_body(lambda w, c: {"group_id": c["group"]}),
        changes=True,
        note="alice into a group",
    ),
    Row("GET", f"{API}/quotas", signed_in(200)),
    Row(
        "PUT",
        f"{API}/groups/{{group}}/quotas",
        manager(200),
        setup=fresh(new_group),
        send=json_body(lambda w, c: {"period": "month", "printer_hours": "10"}),
        changes=True,
    ),
    Row(
        "PUT",
        f"{API}/members/{{member}}/quotas",
        manager(200),
        setup=as_fresh_member,
        send=json_body(lambda w, c: {"period": "month", "grams": "500"}),
        changes=True,
        note="a member raising their own quota",
    ),
    Row(
        "DELETE",
        f"{API}/groups/{{group}}/quotas/{{period}}",
        manager(204),
        setup=fresh(group_with_quota),
        changes=True,
    ),
    Row(
        "DELETE",
        f"{API}/members/{{member}}/quotas/{{period}}",
        manager(204),
        setup=fresh(alice_with_quota),
        changes=True,
        note="alice's own quota",
    ),
    Row("GET", f"{API}/members/{{member}}/quota", owner(200), setup=cached("alice", alice)),
    # -- notifications and webhooks ---------------------------------------------------------------
    Row("GET", f"{API}/notifications", signed_in(200)),
    Row(
        "PUT",
        f"{API}/notifications/language",
        signed_in(200),
        send=json_body(lambda w, c: {"language": "fr"}),
        changes=True,
        note="one's own",
    ),
    Row(
        "POST",
        f"{API}/notifications/channels",
        signed_in(201),
        send=json_body(lambda w, c: {"label": "mail", "url": CHANNEL_URL, "kinds": ["job_done"]}),
        changes=True,
        note="one's own",
    ),
    Row(
        "PATCH",
        f"{API}/notifications/channels/{{channel}}",
        OWN_CHANNEL,
        setup=fresh(alices_channel),
        send=json_body(lambda w, c: {"label": "renamed"}),
        changes=True,
        note="alice's channel",
    ),
    Row(
        "DELETE",
        f"{API}/notifications/channels/{{channel}}",
        {**OWN_CHANNEL, "member": 204},
        setup=fresh(alices_channel),
        changes=True,
        note="alice's channel",
    ),
    Row("GET", f"{API}/webhooks", manager(200)),
    Row(
        "POST",
        f"{API}/webhooks",
        manager(201),
        send=json_body(lambda w, c: {"url": HOOK_URL, "kinds": ["job_done"]}),
        changes=True,
    ),
    Row(
        "PATCH",
        f"{API}/webhooks/{{webhook}}",
        manager(200),
        setup=fresh(a_webhook),
        send=json_body(lambda w, c: {"kinds": ["job_failed"]}),
        changes=True,
    ),
    Row("DELETE", f"{API}/webhooks/{{webhook}}", manager(204), setup=fresh(a_webhook), changes=True),
    Row(
        "GET",
        f"{API}/webhooks/{{webhook}}/deliveries",
        manager(200),
        setup=cached("delivered", webhook_with_delivery),
    ),
    Row(
        "POST",
        f"{API}/webhooks/{{webhook}}/deliveries/{{delivery}}/replay",
        manager(201),
        setup=fresh(webhook_with_delivery),
        changes=True,
    ),
    # -- the dashboard: pages -----------------------------------------------------------------------
    Row("GET", "/", page()),
    Row("GET", "/signin", {"anonymous": 200, "member": 302, "other": 302, "manager": 302}),
    Row("GET", "/account", page()),
    Row("GET", "/printers/{printer}", page(), setup=cached("printer", new_printer)),
    Row("GET", "/queue", page()),
    Row("GET", "/jobs/{job}", owner_page(), setup=cached("queued", job_in(JobState.QUEUED))),
    Row(
        "GET",
        "/jobs/{job}/thumbnail",
        owner_page(anonymous=401),
        setup=cached("thumb", job_in(JobState.QUEUED, gcode_with_thumbnail())),
    ),
    Row("GET", "/jobs/{job}/snapshot", owner_page(anonymous=401), setup=cached("photo", photographed)),
    Row("GET", "/events", page(anonymous=401)),
    Row("GET", "/members", manager_page()),
    Row("GET", "/settings", manager_page()),
    Row("GET", "/stats", page()),
    Row("GET", "/stats.csv", page(), note="by member, a member gets only their own row"),
    Row("GET", "/webhooks", manager_page()),
    Row("GET", "/webhooks/{webhook}", manager_page(), setup=cached("delivered", webhook_with_delivery)),
    Row("GET", "/submit", page()),
    Row("GET", "/metrics", dict.fromkeys(WEB_ROLES, 401), note="a dashboard session is not the scrape token"),
    Row("GET", "/spools", page()),
    Row("GET", "/prices", page()),
    Row("GET", "/ledger", page()),
    Row("GET", "/ledger/export?month=2026-11", manager_page()),
    Row("GET", "/groups", manager_page()),
    Row("GET", "/assets/dashboard.js", dict.fromkeys(WEB_ROLES, 200)),
    Row("GET", "/assets/..%2fviews.py", dict.fromkeys(WEB_ROLES, 404), note="no way out of the folder"),
    Row("GET", "/static/..%2f__init__.py", dict.fromkeys(WEB_ROLES, 404), note="the app serves no files"),
    # -- the dashboard: actions ---------------------------------------------------------------------
    Row(
        "POST",
        "/signin",
        dict.fromkeys(WEB_ROLES, 303),
        setup=fresh_browser,
        send=lambda w, c: {"data": {"name": "alice", "password": PASSWORD}},
    ),
    Row("POST", "/signout", action(), setup=fresh_browser),
    Row("POST", "/language", dict.fromkeys(WEB_ROLES, 303), send=form(lambda w, c: {"lang": "en"})),
    Row(
        "POST",
        "/account",
        action(),
        setup=own_account,
        send=form(lambda w, c: {"current": PASSWORD, "password": NEW_PASSWORD, "again": NEW_PASSWORD}),
        changes=True,
        note="one's own password",
    ),
    Row("POST", "/account/link-code", action(200), setup=own_account, changes=True, note="one's own"),
    Row(
        "POST",
        "/account/tokens/revoke",
        action(),
        setup=account_with_token,
        send=form(lambda w, c: {"token": c["token_id"]}),
        changes=True,
        note="one's own token",
    ),
    Row(
        "POST",
        "/account/notifications/language",
        action(),
        setup=own_account,
        send=form(lambda w, c: {"language": "fr"}),
        changes=True,
        note="one's own",
    ),
    Row(
        "POST",
        "/account/channels",
        action(),
        setup=own_account,
        send=form(lambda w, c: {"label": "mail", "url": CHANNEL_URL, "kind": ["job_done"]}),
        changes=True,
        note="one's own",
    ),
    Row(
        "POST",
        "/account/channels/{channel}",
        action(),
        setup=account_with_channel,
        send=form(lambda w, c: {"action": "save", "kind": ["job_failed"]}),
        changes=True,
        note="one's own channel",
    ),
    Row(
        "POST",
        "/webhooks",
        manager_action(200),
        send=form(lambda w, c: {"url": HOOK_URL, "kind": ["job_done"]}),
        changes=True,
    ),
    Row(
        "POST",
        "/webhooks/{webhook}",
        manager_action(),
        setup=fresh(a_webhook),
        send=form(lambda w, c: {"action": "delete"}),
        changes=True,
    ),
    Row(
        "POST",
        "/webhooks/{webhook}/deliveries/{delivery}/replay",
        manager_action(),
        setup=fresh(webhook_with_delivery),
        changes=True,
    ),
    Row(
        "POST",
        "/printers/{printer}/snapshot",
        manager_action(),
        setup=cached("plate", lambda w: {"printer": w.plate_of_alice().id}),
        note="ask for a photo of alice's print on the plate",
    ),
    Row(
        "POST",
        "/printers/{printer}/bed-cleared",
        owner_action(),
        setup=fresh(lambda w: {"printer": w.plate_of_alice().id}),
        changes=True,
        note="alice's print on the plate",
    ),
    Row(
        "POST",
        "/printers/{printer}/material",
        manager_action(),
        setup=fresh(new_printer),
        send=form(lambda w, c: {"material": "PETG"}),
        changes=True,
    ),
    Row("POST", "/enroll-code", manager_action(200), changes=True),
    Row(
        "POST",
        "/jobs/{job}/approve",
        manager_action(),
        setup=fresh(job_in(JobState.AWAITING_APPROVAL)),
        changes=True,
    ),
    Row(
        "POST",
        "/jobs/{job}/reject",
        manager_action(),
        setup=fresh(job_in(JobState.AWAITING_APPROVAL)),
        changes=True,
    ),
    Row("POST", "/jobs/{job}/pause", owner_action(), setup=cached("printing", job_in(JobState.PRINTING))),
    Row("POST", "/jobs/{job}/resume", owner_action(), setup=cached("paused", job_in(JobState.PAUSED))),
    Row("POST", "/jobs/{job}/cancel", owner_action(), setup=fresh(job_in(JobState.QUEUED)), changes=True),
    Row(
        "POST",
        "/jobs/{job}/delete",
        action(404),
        setup=cached("queued", job_in(JobState.QUEUED)),
        note="no such action",
    ),
    Row(
        "POST",
        "/members/{member}/grants",
        manager_action(),
        setup=fresh(lambda w: {"member": w.people["alice"].id, "printer": w.printer(restricted=True).id}),
        send=form(lambda w, c: {"printer": c["printer"]}),
        changes=True,
    ),
    Row("POST", "/settings", manager_action(), send=form(settings_form)),
    Row(
        "POST",
        "/prices",
        manager_action(),
        send=form(lambda w, c: {"body": json.dumps(PRICES)}),
        changes=True,
    ),
    Row(
        "POST",
        "/spools",
        manager_action(),
        send=form(lambda w, c: {k: str(v) for k, v in SPOOL.items()}),
        changes=True,
    ),
    Row(
        "POST",
        "/spools/{spool}/load",
        manager_action(),
        setup=fresh(lambda w: {**new_spool(w), "target": w.printer().id}),
        send=form(lambda w, c: {"printer_id": c["target"]}),
        changes=True,
    ),
    Row("POST", "/spools/{spool}/unload", manager_action(), setup=fresh(spool_on_printer), changes=True),
    Row("POST", "/groups", manager_action(), send=form(lambda w, c: {"name": w.unique("g")}), changes=True),
    Row(
        "POST",
        "/groups/quota",
        manager_action(),
        setup=fresh(new_group),
        send=form(lambda w, c: {"holder": f"group:{c['group']}", "period": "day", "grams": "20"}),
        changes=True,
    ),
    Row(
        "POST",
        "/groups/member",
        manager_action(),
        setup=fresh(alice_and_group),
        send=form(lambda w, c: {"member": str(c["member"]), "group": str(c["group"])}),
        changes=True,
    ),
    Row(
        "POST",
        "/jobs/{job}/lift-quotas",
        manager_action(),
        setup=fresh(job_in(JobState.QUEUED)),
        changes=True,
    ),
    Row("POST", "/submit", action(200), send=upload(), note="analysis only"),
    Row("POST", "/submit/confirm", action(), send=upload(), changes=True),
)
PLACEHOLDERS = {
    "job": 1,
    "printer": "p",
    "member": 1,
    "token_id": "0" * 64,
    "group": 1,
    "period": "day",
    "spool": 1,
    "channel": 1,
    "webhook": 1,
    "delivery": 1,
}


# -- running a row --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sessions(world: World) -> dict[str, Browser]:
    """One dashboard session per role, signed in through /signin (anonymous: a session with no one)."""
    out = {"anonymous": Browser(world.app)}
    for role, name in PERSON.items():
        out[role] = Browser(world.app).signed_in(name)
    return out


def call(world: World, sessions: dict[str, Browser], row: Row, role: str, ctx: dict[str, Any]) -> Any:
    url = row.path.format(**ctx)
    kwargs = row.send(world, ctx)
    if row.web:
        browser = ctx.get("browser") or sessions[role]
        if row.method == "POST":
            return browser.post(url, **kwargs)
        return browser.http.open(url, method=row.method, **kwargs)
    token = ctx.get("token") or world.tokens.get(PERSON.get(role, role))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return world.app.test_client().open(url, method=row.method, headers=headers, **kwargs)


def outcome(response: Any) -> Expect:
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location.startswith("/signin"):
        return SIGNIN
    return int(response.status_code)


def test_the_table_names_every_rule_of_the_app(world: World) -> None:
    adapter = world.app.url_map.bind("fleet.test")
    covered = set()
    stale = []
    for row in TABLE:
        path = row.path.format(**PLACEHOLDERS).split("?", 1)[0]
        try:
            rule, _ = adapter.match(path, row.method, return_rule=True)
        except HTTPException:
            stale.append(row.id)
            continue
        covered.add((row.method, rule.rule))
    assert stale == [], "rows for endpoints the app no longer has"
    every = {
        (method, rule.rule)
        for rule in world.app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert sorted(every - covered) == [], "endpoints with no row in the authorisation table"


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_each_role_gets_what_the_table_says(world: World, sessions: dict[str, Browser], row: Row) -> None:
    wrong = []
    for role in WEB_ROLES if row.web else API_ROLES:
        expected = row.expect[role]
        ctx = row.setup(world, role)
        before = (db_state(world.fleet), blob_files(world.fleet))
        response = call(world, sessions, row, role, ctx)
        got = outcome(response)
        response.close()  # the live-update stream holds a slot until closed
        after = (db_state(world.fleet), blob_files(world.fleet))
        allowed = isinstance(expected, int) and expected < 400
        if got != expected:
            wrong.append(f"{role}: expected {expected}, got {got} {response.get_data(as_text=True)[:200]!r}")
        elif not allowed and after != before:
            wrong.append(f"{role}: refused with {got}, but the database or the blob store changed")
        elif allowed and row.changes and after == before:
            wrong.append(f"{role}: allowed with {got}, but nothing changed")
    assert not wrong, f"{row.id}:\n" + "\n".join(wrong)


POSTS = [row for row in TABLE if row.web and row.method == "POST"]


@pytest.mark.parametrize("row", POSTS, ids=[row.id for row in POSTS])
def test_a_dashboard_action_without_the_sessions_csrf_token_is_refused(
    world: World, sessions: dict[str, Browser], row: Row
) -> None:
    """Even for a manager (allowed every action): no token, a forged one, or another session's valid
    one is 400, and nothing changes."""
    allowed = "manager"
    foreign = sessions["other"].csrf()
    for sent in (None, "forged", foreign):
        ctx = row.setup(world, allowed)
        browser = ctx.get("browser") or sessions[allowed]
        kwargs = row.send(world, ctx)
        data = dict(kwargs.pop("data", {}))
        if sent is not None:
            data["csrf"] = sent
        before = (db_state(world.fleet), blob_files(world.fleet))
        response = browser.http.post(row.path.format(**ctx), data=data, **kwargs)
        assert response.status_code == 400, f"{row.id} with csrf={sent!r}: {response.status_code}"
        assert "This form was out of date" in response.get_data(as_text=True)
        assert (db_state(world.fleet), blob_files(world.fleet)) == before, f"{row.id} with csrf={sent!r}"


def test_a_deactivated_member_and_a_revoked_printer_are_shut_out(world: World) -> None:
    """Credentials that were good stop working at once: the token, the open session, the printer's token."""
    member, token = world.member(password=True)
    browser = Browser(world.app).signed_in(member.name)
    printer, printer_token = world.enrolled()
    job = world.job(JobState.QUEUED)
    world.run(job, printer, JobState.ASSIGNED)
    api = world.app.test_client()
    file_url = f"/api/v1/printers/{printer.id}/jobs/{job.id}/file"
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.get(file_url, headers={"Authorization": f"Bearer {printer_token}"}).status_code == 200
    assert browser.http.get("/queue").status_code == 200

    boss = world.people["manager"]
    world.service.members.update_member(boss, member.id, MemberChanges(active=False))
    world.service.enrollment.revoke_printer(boss, printer.id)

    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.get(file_url, headers={"Authorization": f"Bearer {printer_token}"}).status_code == 401
    assert outcome(browser.http.get("/queue")) == SIGNIN
    assert Browser(world.app).sign_in(member.name).status_code == 401


def test_the_printer_board_names_the_plate_by_the_last_print(world: World) -> None:
    """The card offers "bed cleared" to the member the service lets clear it: alice, not bob."""
    plate = world.plate_of_alice()
    [entry] = [e for e in world.service.board.printer_board() if e.printer.id == plate.id]
    assert entry.plate_owner == world.people["alice"].id
