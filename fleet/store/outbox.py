"""Members' channels and language, managers' webhooks, and the outbox a worker delivers from.

Rows are added by the store's own writes (:mod:`.notices`); here they are claimed, recorded as sent
or failed, listed and replayed. A claim is one short transaction that marks its rows taken for a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several fleet processes share the work without
waiting on one another; SQLite's single writer runs one worker). A worker that dies mid-send leaves
its rows claimed: once the lease ends, a channel's is given up (a person is told at most once) and
a webhook's is sent again under the same delivery id (its receiver can tell).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from ..errors import NotFound
from ..models import Page
from ..notify.events import EventKind
from . import notices
from . import schema as s
from .base import StoreBase, _insert
from .engine import read_transaction, write_transaction
from .notices import FAILED, PENDING, SENT


@dataclass(frozen=True)
class Channel:
    """A member's channel as it may be shown: never its URL, only the redacted form."""

    id: int
    member_id: int
    label: str
    shown: str
    service: str
    kinds: tuple[EventKind, ...]
    created_at: float
    failures: int
    paused_at: Optional[float]
    last_error: Optional[str]


@dataclass(frozen=True)
class Webhook:
    """A manager's webhook (its secret is shown once, when registered, and never again)."""

    id: int
    created_by: Optional[int]
    url: str
    kinds: tuple[EventKind, ...]
    created_at: float
    failures: int
    paused_at: Optional[float]
    last_error: Optional[str]


@dataclass(frozen=True)
class Delivery:
    """One row of the outbox as a log shows it."""

    id: int
    delivery_key: str
    event_key: str
    kind: EventKind
    channel_id: Optional[int]
    webhook_id: Optional[int]
    job_id: Optional[int]
    data: dict[str, Any]
    created_at: float
    state: str
    due_at: float
    attempts: int
    sent_at: Optional[float]
    last_status: Optional[int]
    last_error: Optional[str]


@dataclass(frozen=True)
class ChannelTarget:
    id: int
    member_id: int
    url: str
    language: str


@dataclass(frozen=True)
class WebhookTarget:
    id: int
    url: str
    secret: str


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker took, with where it goes (secrets included: for the sender only)."""

    delivery: Delivery
    target: Union[ChannelTarget, WebhookTarget]


def _kinds(value: str) -> tuple[EventKind, ...]:
    names = set(json.loads(value or "[]"))
    return tuple(kind for kind in EventKind if kind.value in names)


def _kinds_column(kinds: Sequence[EventKind]) -> str:
    return json.dumps([EventKind(kind).value for kind in kinds])


def _channel(row: Row[Any]) -> Channel:
    return Channel(
        row.id,
        row.member_id,
        row.label,
        row.shown,
        row.service,
        _kinds(row.kinds),
        row.created_at,
        row.failures,
        row.paused_at,
        row.last_error,
    )


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        row.id,
        row.created_by,
        row.url,
        _kinds(row.kinds),
        row.created_at,
        row.failures,
        row.paused_at,
        row.last_error,
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        row.id,
        row.delivery_key,
        row.event_key,
        EventKind(row.kind),
        row.channel_id,
        row.webhook_id,
        row.job_id,
        json.loads(row.data or "{}"),
        row.created_at,
        row.state,
        row.due_at,
        row.attempts,
        row.sent_at,
        row.last_status,
        row.last_error,
    )


#: Why a delivery to a channel was given up after its worker stopped in the middle of sending it.
ABANDONED = "the fleet stopped while sending this; it is not sent again, so that it is never sent twice"


class NotificationRecords(StoreBase):
    # -- a member's language and channels -----------------------------------------------------------

    def notify_language(self, member_id: int) -> Optional[str]:
        """The language a member chose for notifications, or None (not chosen yet)."""
        with read_transaction(self._engine) as conn:
            return conn.execute(
                select(s.notify_profiles.c.language).where(s.notify_profiles.c.member_id == member_id)
            ).scalar_one_or_none()

    def set_notify_language(self, member_id: int, language: str) -> None:
        dialect = postgresql if self.backend == "postgresql" else sqlite
        statement = dialect.insert(s.notify_profiles).values(member_id=member_id, language=language)
        statement = statement.on_conflict_do_update(index_elements=["member_id"], set_={"language": language})
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            conn.execute(statement)

    def add_channel(
        self,
        member_id: int,
        *,
        label: str,
        url: str,
        shown: str,
        service: str,
        kinds: Sequence[EventKind],
        now: float,
        limit: int,
    ) -> Channel:
        """Keep a member's new channel; :class:`~fleet.errors.Conflict` past ``limit`` channels."""
        from ..errors import Conflict

        channels = s.notify_channels.c
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            held = conn.execute(select(channels.id).where(channels.member_id == member_id)).all()
            if len(held) >= limit:
                raise Conflict(
                    f"a member may keep at most {limit} channels; delete one first", key="too_many_channels"
                )
            channel_id = _insert(
                conn,
                s.notify_channels,
                {
                    "member_id": member_id,
                    "label": label,
                    "url": url,
                    "shown": shown,
                    "service": service,
                    "kinds": _kinds_column(kinds),
                    "created_at": now,
                    "failures": 0,
                },
            )
            return self._channel(conn, member_id, channel_id)

    def _channel(self, conn: Connection, member_id: int, channel_id: int) -> Channel:
        channels = s.notify_channels.c
        row = conn.execute(
            select(s.notify_channels).where(channels.id == channel_id, channels.member_id == member_id)
        ).first()
        if row is None:
            raise NotFound(f"you have no channel with id {channel_id}", field="channel_id", key="no_channel")
        return _channel(row)

    def channels_of(self, member_id: int) -> list[Channel]:
        channels = s.notify_channels.c
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.notify_channels).where(channels.member_id == member_id).order_by(channels.id)
            ).all()
        return [_channel(row) for row in found]

    def update_channel(
        self,
        member_id: int,
        channel_id: int,
        *,
        label: Optional[str] = None,
        kinds: Optional[Sequence[EventKind]] = None,
        resume: bool = False,
    ) -> Channel:
        """Change a channel's label or kinds; ``resume`` un-pauses it (its waiting deliveries go again)."""
        values: dict[str, Any] = {}
        if label is not None:
            values["label"] = label
        if kinds is not None:
            values["kinds"] = _kinds_column(kinds)
        if resume:
            values.update(paused_at=None, failures=0)
        with write_transaction(self._engine) as conn:
            self._channel(conn, member_id, channel_id)
            if values:
                conn.execute(
                    update(s.notify_channels).where(s.notify_channels.c.id == channel_id).values(values)
                )
            return self._channel(conn, member_id, channel_id)

    def delete_channel(self, member_id: int, channel_id: int) -> None:
        with write_transaction(self._engine) as conn:
            self._channel(conn, member_id, channel_id)
            conn.execute(delete(s.outbox).where(s.outbox.c.channel_id == channel_id))
            conn.execute(delete(s.notify_channels).where(s.notify_channels.c.id == channel_id))

    # -- webhooks -----------------------------------------------------------------------------------

    def add_webhook(
        self, created_by: Optional[int], *, url: str, secret: str, kinds: Sequence[EventKind], now: float
    ) -> Webhook:
        with write_transaction(self._engine) as conn:
            webhook_id = _insert(
                conn,
                s.webhooks,
                {
                    "created_by": created_by,
                    "url": url,
                    "secret": secret,
                    "kinds": _kinds_column(kinds),
                    "created_at": now,
                    "failures": 0,
                },
            )
            return self._webhook(conn, webhook_id)

    def _webhook(self, conn: Connection, webhook_id: int) -> Webhook:
        row = self._by_id(conn, s.webhooks, webhook_id)
        if row is None:
            raise NotFound(f"there is no webhook with id {webhook_id}", field="webhook_id", key="no_webhook")
        return _webhook(row)

    def get_webhook(self, webhook_id: int) -> Webhook:
        with read_transaction(self._engine) as conn:
            return self._webhook(conn, webhook_id)

    def list_webhooks(self) -> list[Webhook]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.webhooks).order_by(s.webhooks.c.id)).all()
        return [_webhook(row) for row in found]

    def update_webhook(
        self, webhook_id: int, *, kinds: Optional[Sequence[EventKind]] = None, resume: bool = False
    ) -> Webhook:
        values: dict[str, Any] = {}
        if kinds is not None:
            values["kinds"] = _kinds_column(kinds)
        if resume:
            values.update(paused_at=None, failures=0)
        with write_transaction(self._engine) as conn:
            self._webhook(conn, webhook_id)
            if values:
                conn.execute(update(s.webhooks).where(s.webhooks.c.id == webhook_id).values(values))
            return self._webhook(conn, webhook_id)

    def delete_webhook(self, webhook_id: int) -> None:
        with write_transaction(self._engine) as conn:
            self._webhook(conn, webhook_id)
            conn.execute(delete(s.outbox).where(s.outbox.c.webhook_id == webhook_id))
            conn.execute(delete(s.webhooks).where(s.webhooks.c.id == webhook_id))

    def webhook_deliveries(
        self, webhook_id: int, *, before: Optional[int] = None, limit: int = 100
    ) -> Page[Delivery, int]:
        """A webhook's deliveries, newest first, with an id below ``before``."""
        box = s.outbox.c
        query = select(s.outbox).where(box.webhook_id == webhook_id).order_by(box.id.desc()).limit(limit + 1)
        if before is not None:
            query = query.where(box.id < before)
        with read_transaction(self._engine) as conn:
            self._webhook(conn, webhook_id)
            found = conn.execute(query).all()
        items = [_delivery(row) for row in found[:limit]]
        return Page(items=items, next_after=items[-1].id if len(found) > limit else None)

    def replay_delivery(self, webhook_id: int, delivery_id: int, *, now: float) -> Delivery:
        """Queue a delivery again, as a new delivery (a new id, the same event and body)."""
        box = s.outbox.c
        with write_transaction(self._engine) as conn:
            self._webhook(conn, webhook_id)
            row = conn.execute(
                select(s.outbox).where(box.id == delivery_id, box.webhook_id == webhook_id)
            ).first()
            if row is None:
                raise NotFound(
                    f"webhook {webhook_id} has no delivery with id {delivery_id}", field="delivery_id"
                )
            new_id = _insert(
                conn,
                s.outbox,
                {
                    "delivery_key": f"{row.event_key}>w{webhook_id}~{secrets.token_hex(6)}",
                    "event_key": row.event_key,
                    "kind": row.kind,
                    "channel_id": None,
                    "webhook_id": webhook_id,
                    "job_id": row.job_id,
                    "data": row.data,
                    "created_at": now,
                    "state": PENDING,
                    "due_at": now,
                    "claimed_until": None,
                    "attempts": 0,
                },
            )
            return _delivery(conn.execute(select(s.outbox).where(box.id == new_id)).one())

    # -- the worker's side --------------------------------------------------------------------------

    def claim_deliveries(self, now: float, *, limit: int, lease_s: float) -> list[Claimed]:
        """Take up to ``limit`` due deliveries whose channel or webhook is not paused, for ``lease_s``."""
        box, ch, wh = s.outbox.c, s.notify_channels.c, s.webhooks.c
        due = (
            select(box.id)
            .where(
                box.state == PENDING,
                box.due_at <= now,
                or_(box.claimed_until.is_(None), box.claimed_until < now),
            )
            .order_by(box.due_at, box.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        waiting = select(
            exists().where(
                box.state == PENDING,
                box.due_at <= now,
                or_(box.claimed_until.is_(None), box.claimed_until < now),
            )
        )
        with read_transaction(self._engine) as conn:  # the usual answer, "nothing", takes no write lock
            if not conn.execute(waiting).scalar_one():
                return []
        with write_transaction(self._engine) as conn:
            # A claim whose lease ran out without an outcome: its worker died while sending, and may or
            # may not have sent. A person is told at most once (that one is not sent again); a webhook
            # gets it again, with the same delivery id for its receiver to recognise.
            conn.execute(
                update(s.outbox)
                .where(
                    box.state == PENDING,
                    box.claimed_until.is_not(None),
                    box.claimed_until < now,
                    box.channel_id.is_not(None),
                )
                .values(state=FAILED, claimed_until=None, last_error=ABANDONED)
            )
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            found = conn.execute(
                select(
                    s.outbox,
                    ch.member_id.label("c_member"),
                    ch.url.label("c_url"),
                    ch.paused_at.label("c_paused"),
                    s.notify_profiles.c.language.label("c_language"),
                    wh.url.label("w_url"),
                    wh.secret.label("w_secret"),
                    wh.paused_at.label("w_paused"),
                )
                .select_from(
                    s.outbox.outerjoin(s.notify_channels, ch.id == box.channel_id)
                    .outerjoin(s.notify_profiles, s.notify_profiles.c.member_id == ch.member_id)
                    .outerjoin(s.webhooks, wh.id == box.webhook_id)
                )
                .where(box.id.in_(ids))
                .order_by(box.due_at, box.id)
            ).all()
            claimed: list[Claimed] = []
            for row in found:
                target: Union[ChannelTarget, WebhookTarget]
                if row.channel_id is not None and row.c_url is not None and row.c_paused is None:
                    target = ChannelTarget(row.channel_id, row.c_member, row.c_url, row.c_language or "en")
                elif row.webhook_id is not None and row.w_url is not None and row.w_paused is None:
                    target = WebhookTarget(row.webhook_id, row.w_url, row.w_secret)
                else:
                    continue  # its target is paused: it waits, unclaimed, until resumed
                claimed.append(Claimed(_delivery(row), target))
            if claimed:
                conn.execute(
                    update(s.outbox)
                    .where(box.id.in_([c.delivery.id for c in claimed]))
                    .values(claimed_until=now + lease_s)
                )
        return claimed

    def delivery_sent(self, delivery_id: int, *, now: float, status: Optional[int] = None) -> None:
        """A delivery went: it is done, and its channel or webhook's run of failures ends."""
        box = s.outbox.c
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(box.channel_id, box.webhook_id).where(box.id == delivery_id)).first()
            if row is None:
                return
            conn.execute(
                update(s.outbox)
                .where(box.id == delivery_id)
                .values(
                    state=SENT,
                    sent_at=now,
                    claimed_until=None,
                    attempts=box.attempts + 1,
                    last_status=status,
                    last_error=None,
                )
            )
            table = s.notify_channels if row.channel_id is not None else s.webhooks
            target = row.channel_id if row.channel_id is not None else row.webhook_id
            conn.execute(
                update(table).where(and_(table.c.id == target, table.c.failures > 0)).values(failures=0)
            )

    def delivery_failed(
        self,
        delivery_id: int,
        *,
        now: float,
        error: str,
        status: Optional[int] = None,
        retry_at: Optional[float],
        pause_after: int,
    ) -> bool:
        """A delivery failed: it waits until ``retry_at`` (None: given up); its target counts a failure
        and is paused at ``pause_after`` in a row. Returns whether the target is now paused."""
        box = s.outbox.c
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(box.channel_id, box.webhook_id).where(box.id == delivery_id)).first()
            if row is None:
                return False
            conn.execute(
                update(s.outbox)
                .where(box.id == delivery_id)
                .values(
                    state=PENDING if retry_at is not None else FAILED,
                    due_at=retry_at if retry_at is not None else box.due_at,
                    claimed_until=None,
                    attempts=box.attempts + 1,
                    last_status=status,
                    last_error=error,
                )
            )
            table = s.notify_channels if row.channel_id is not None else s.webhooks
            target = row.channel_id if row.channel_id is not None else row.webhook_id
            current = conn.execute(
                select(table.c.failures, table.c.paused_at).where(table.c.id == target)
            ).first()
            if current is None:
                return False
            failures = current.failures + 1
            pause = current.paused_at is None and failures >= pause_after
            values: dict[str, Any] = {"failures": failures, "last_error": error}
            if pause:
                values["paused_at"] = now
            conn.execute(update(table).where(table.c.id == target).values(values))
            return pause

    def pending_deliveries(
        self, *, channel_id: Optional[int] = None, webhook_id: Optional[int] = None
    ) -> list[Delivery]:
        box = s.outbox.c
        query = select(s.outbox).where(box.state == PENDING).order_by(box.id)
        if channel_id is not None:
            query = query.where(box.channel_id == channel_id)
        if webhook_id is not None:
            query = query.where(box.webhook_id == webhook_id)
        with read_transaction(self._engine) as conn:
            return [_delivery(row) for row in conn.execute(query).all()]

    # -- events that time raises (the worker's periodic look) and those other parts raise ----------

    def raise_overdue(self, now: float, *, offline_after_s: float, waiting_after_s: float) -> int:
        """Raise "offline too long" for printers and "waiting too long" for jobs, once each; how many."""
        from ..states import PENDING as WAITING
        from ..states import PrinterState

        printers, jobs, box = s.printers.c, s.jobs.c, s.outbox.c
        raised = 0
        with read_transaction(self._engine) as conn:  # most looks find nothing new: no write lock
            offline = conn.execute(
                select(printers.id, printers.name, printers.last_seen).where(
                    printers.state == PrinterState.OFFLINE.value,
                    printers.last_seen.is_not(None),
                    printers.last_seen < now - offline_after_s,
                )
            ).all()
            waiting = conn.execute(
                select(jobs.id).where(
                    jobs.state.in_(sorted(state.value for state in WAITING)),
                    jobs.submitted_at < now - waiting_after_s,
                )
            ).all()
            keys = {f"printer:{p.id}:offline:{p.last_seen!r}": p for p in offline}
            job_keys = {f"job:{j.id}:waiting": j.id for j in waiting}
            wanted = sorted([*keys, *job_keys])
            done: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                done |= set(
                    conn.execute(select(box.event_key).where(box.event_key.in_(chunk)).distinct()).scalars()
                )
        new_printers = {key: p for key, p in keys.items() if key not in done}
        new_jobs = {key: job_id for key, job_id in job_keys.items() if key not in done}
        if not new_printers and not new_jobs:
            return 0
        with write_transaction(self._engine) as conn:
            for key, printer in new_printers.items():
                data = {
                    "printer_id": printer.id,
                    "printer_name": printer.name,
                    "at": now,
                    "minutes": round(offline_after_s / 60),
                }
                raised += notices.raise_event(
                    conn, EventKind.PRINTER_OFFLINE, key, data, at=now, managers=True
                )
            for key, job_id in new_jobs.items():
                _, data = notices.job_data(conn, job_id, at=now, hours=round(waiting_after_s / 3600, 1))
                raised += notices.raise_event(
                    conn, EventKind.JOB_WAITING, key, data, at=now, managers=True, job_id=job_id
                )
        return raised

    def raise_spool_low(
        self, printer_id: str, spool: str, remaining_g: float, *, occurrence: str, now: float
    ) -> int:
        """Tell the managers a printer's spool runs low, once per ``occurrence`` (e.g. the spool's id
        and its fill when it crossed the threshold); returns how many deliveries were queued."""
        with write_transaction(self._engine) as conn:
            self._printer(conn, printer_id)  # NotFound for a printer that does not exist
            return notices.spool_low(conn, printer_id, spool, remaining_g, occurrence=occurrence, at=now)
