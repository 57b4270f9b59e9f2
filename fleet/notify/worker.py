"""The outbox's worker: one thread that sends what the store queued, with retries and backoff.

It never runs on the MQTT link's thread or a request's: the store's writes only queue rows, and
the services' hooks wake this thread (:meth:`OutboxWorker.wake`); it also looks every ``poll_s``
seconds, which catches rows another fleet process queued. A failure waits ``retry_base_s`` doubled
per attempt (up to ``retry_max_s``, with some jitter); after ``max_attempts`` the delivery is given up,
and a channel or webhook that fails ``pause_after`` times in a row is paused until its owner resumes
it (what waited for it then goes). Every fleet process runs one (a claim skips the rows another
holds). The events time makes, a printer offline too long and a job waiting too long, are raised by
:meth:`OutboxWorker.scan`, which the fleet runs as the once-only duty :data:`NOTIFY_SCAN` (one
process at a time, see :mod:`fleet.duties`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..metrics import FleetMetrics
from ..store import ChannelTarget, Claimed, Store
from ..store.base import PHOTO_KINDS
from . import channels, webhooks
from .texts import render

log = logging.getLogger(__name__)

#: The duty that looks for printers offline and jobs waiting too long (see :mod:`fleet.duties`).
NOTIFY_SCAN = "notify-scan"


@dataclass(frozen=True)
class NotifyOptions:
    """How the outbox is worked; the fleet's defaults, smaller in tests."""

    #: Look for due deliveries this often even when nothing woke the worker.
    poll_s: float = 5.0
    #: The least time between two passes, however often the worker is woken.
    min_gap_s: float = 0.25
    #: Deliveries taken per claim.
    batch: int = 20
    #: A claim holds its rows this long; a worker that died lets them go after it.
    lease_s: float = 120.0
    retry_base_s: float = 30.0
    retry_max_s: float = 3600.0
    max_attempts: int = 12
    pause_after: int = 8
    #: How long a "done" or "clear the plate" notice waits for the plate photo.
    photo_wait_s: float = 30.0
    #: A printer offline this long is reported to the managers who chose it.
    offline_after_s: float = 15 * 60.0
    #: A job waiting this long is reported to the managers who chose it.
    waiting_after_s: float = 24 * 3600.0
    #: How often the fleet looks for those two (:meth:`OutboxWorker.scan`).
    scan_every_s: float = 60.0


def backoff(attempts: int, base_s: float, max_s: float, jitter: float = 0.0) -> float:
    """Seconds to wait after the ``attempts``-th failure: base doubled each time, capped, plus up to
    a tenth more by ``jitter`` (0 to 1) so that many failures do not all come back at once."""
    delay = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    return delay * (1.0 + 0.1 * min(max(jitter, 0.0), 1.0))


ChannelSender = Callable[[str, str, str, Optional[channels.Attachment]], Optional[str]]
WebhookPoster = Callable[[str, str, str, str, bytes], webhooks.Answer]


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        options: NotifyOptions = NotifyOptions(),
        *,
        clock: Callable[[], float] = time.time,
        send_channel: ChannelSender = channels.send,
        post_webhook: WebhookPoster = webhooks.post,
        metrics: Optional[FleetMetrics] = None,
    ) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.send_channel = send_channel
        self.post_webhook = post_webhook
        #: Counts ``notifications.delivered`` and ``notifications.failed`` by kind of channel, and
        #: times ``notifications.send_s``.
        self.metrics = metrics
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._random = random.Random()  # noqa: S311 (jitter, not a secret)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="crowdfab-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the database away for a moment: look again at the next poll
                log.exception("the outbox's worker failed a pass; it tries again")
            self._wake.wait(self.options.poll_s)
            # Many changes in a burst (a busy fleet wakes this for each) make one pass, not many.
            self._stop.wait(self.options.min_gap_s)
            self._wake.clear()

    def scan(self) -> int:
        """Raise what time raises: printers offline and jobs waiting longer than the options say
        (each once). Returns how many events it raised, and wakes the delivery when there are some."""
        raised = self.store.raise_overdue(
            self.clock(),
            offline_after_s=self.options.offline_after_s,
            waiting_after_s=self.options.waiting_after_s,
        )
        if raised:
            self.wake()
        return raised

    def run_pending(self) -> int:
        """One pass: deliver until nothing due is left; returns how many deliveries it attempted."""
        sent = 0
        while not self._stop.is_set():
            claimed = self.store.claim_deliveries(
                self.clock(), limit=self.options.batch, lease_s=self.options.lease_s
            )
            if not claimed:
                break
            for item in claimed:
                self.deliver(item)
                sent += 1
        return sent

    def deliver(self, item: Claimed) -> None:
        """Send one claimed delivery and record how it went."""
        delivery, target = item.delivery, item.target
        status: Optional[int] = None
        began = time.monotonic()
        if isinstance(target, ChannelTarget):
            title, body = render(delivery.kind, delivery.data, target.language)
            attachment = None
            if delivery.kind in PHOTO_KINDS and delivery.job_id is not None:
                photo = self.store.job_snapshot(delivery.job_id)
                if photo is not None:
                    suffix = "png" if photo.media_type == "image/png" else "jpg"
                    attachment = channels.Attachment(
                        photo.data, f"plate-{delivery.job_id}.{suffix}", photo.media_type
                    )
            error = self.send_channel(target.url, title, body, attachment)
            where = f"channel {target.id}"
            kind = channels.kind_of(target.url)
        else:
            payload = webhooks.body_of(
                delivery.delivery_key,
                delivery.event_key,
                delivery.kind.value,
                delivery.created_at,
                delivery.data,
            )
            answer = self.post_webhook(
                target.url, target.secret, delivery.delivery_key, delivery.event_key, payload
            )
            error, status = answer.error, answer.status
            where = f"webhook {target.id}"
            kind = "webhook"
        now = self.clock()
        if self.metrics is not None:
            self.metrics.observe("notifications.send_s", time.monotonic() - began)
            self.metrics.notification(kind, delivered=error is None)
        if error is None:
            self.store.delivery_sent(delivery.id, now=now, status=status)
            log.info("delivered %s to %s", delivery.delivery_key, where)
            return
        attempts = delivery.attempts + 1
        retry_at = None
        if attempts < self.options.max_attempts:
            delay = backoff(
                attempts, self.options.retry_base_s, self.options.retry_max_s, self._random.random()
            )
            retry_at = now + delay
        paused = self.store.delivery_failed(
            delivery.id,
            now=now,
            error=error,
            status=status,
            retry_at=retry_at,
            pause_after=self.options.pause_after,
        )
        log.warning(
            "could not deliver %s to %s (attempt %d%s): %s",
            delivery.delivery_key,
            where,
            attempts,
            "; paused after repeated failures" if paused else "" if retry_at else "; given up",
            error,
        )
