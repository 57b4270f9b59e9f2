"""Real receivers on localhost for what the fleet sends: an SMTP server (aiosmtpd) keeping every mail,
and an HTTP server keeping every POST, which checks a webhook's signature as an integration would."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiosmtpd.controller import Controller

from fleet.notify.signing import SIGNATURE_HEADER, SignatureError, verify
from tests.brokers import free_port
from tests.http_stub import Reply, Request, serving


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    attachments: tuple[str, ...]


@dataclass
class Inbox:
    """Every mail the SMTP server took, and the ``mailto://`` URL that sends to ``address`` through it."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, address: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=fleet@lab.test&to={address}&mode=insecure"

    def subjects(self, address: str) -> list[str]:
        with self.lock:
            return [m.subject for m in self.mails if address in m.to]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        names = tuple(part.get_filename() or "" for part in message.iter_attachments())  # type: ignore[attr-defined]
        mail = Mail(
            tuple(envelope.rcpt_tos), str(message["subject"]), body.get_content() if body else "", names
        )
        with self.lock:
            self.mails.append(mail)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    inbox = Inbox(free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Posts:
    """Every POST the HTTP receiver took; ``/hook`` ones are checked against ``secrets`` (by path)."""

    base: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    #: Paths answered with this status instead (a receiver that is down or broken).
    failing: dict[str, int] = field(default_factory=dict)
    accepted: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Request) -> Reply:
        path, _, query = request.path.partition("?")
        if path in self.failing:
            return Reply(self.failing[path])
        secret = self.secrets.get(path)
        if secret is not None:
            try:
                verify(secret, request.body, request.headers.get(SIGNATURE_HEADER, ""), now=time.time())
            except SignatureError as exc:
                with self.lock:
                    self.refused.append((path, str(exc)))
                return Reply(400, str(exc).encode())
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = json.loads(request.body)
        except ValueError:  # a file posted as it is (ntfy's attachments), its text in the query
            body = {**dict(parse_qsl(query)), "attached_bytes": len(request.body)}
        with self.lock:
            self.accepted.append((path, body, headers))
        return Reply(200, b"{}", "application/json")

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for at, body, _ in self.accepted if at == path]


@contextmanager
def http_receiver() -> Iterator[Posts]:
    posts = Posts()
    with serving(posts.answer) as base:
        posts.base = base
        yield posts
