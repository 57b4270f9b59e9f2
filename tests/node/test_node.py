from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.node import DownloadError, JobPhase, NodeSettings, PrinterNode, PrinterSnapshot, PrintOutcome
from fleet.node.journal import Journal
from fleet.node.worker import InlineExecutor, Worker
from fleet.protocol import (
    OFFLINE,
    ONLINE,
    AckStatus,
    Channel,
    CommandType,
    EventType,
    JobRef,
    NodeState,
)

from .conftest import PRINTER_ID, Harness
from .fakes import FakeFetcher, FakeLink, FakePrinter


def test_connect_announces_online_retained_and_status(harness: Harness) -> None:
    harness.start()
    assert harness.link.on(Channel.AVAILABILITY) == [(ONLINE.encode(), True)]
    assert [s.state for s in harness.link.statuses()] == [NodeState.IDLE]
    assert all(retain for _, retain in harness.link.on(Channel.STATUS))


def test_close_publishes_offline(harness: Harness) -> None:
    node = harness.start()
    node.close()
    assert harness.link.on(Channel.AVAILABILITY)[-1] == (OFFLINE.encode(), True)


def test_dispatch_downloads_stores_starts_and_reports(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7, filename="../My Benchy!.gcode"))
    assert harness.printer.started == [Path("crowdfab/7-My_Benchy.gcode")]
    assert (harness.tmp / "printer/crowdfab/7-My_Benchy.gcode").read_bytes() == b"G28\n"
    assert [(a.status, a.job_id) for a in harness.link.acks()] == [(AckStatus.ACCEPTED, 7)]
    assert [(e.type, e.job_id) for e in harness.link.events()] == [(EventType.JOB_STARTED, 7)]
    assert harness.link.statuses()[-1].state is NodeState.PRINTING
    assert not list((harness.tmp / "downloads").iterdir()), "the downloaded copy is removed once stored"


def test_duplicate_dispatch_starts_one_print_and_repeats_the_ack(harness: Harness) -> None:
    harness.start()
    command = harness.command(CommandType.DISPATCH, 7)
    harness.send(command)
    harness.send(command)
    assert len(harness.printer.started) == 1
    assert harness.fetcher.fetched == [7]
    acks = harness.link.acks()
    assert len(acks) == 2 and acks[0] == acks[1]


def test_duplicate_after_restart_is_not_acted_on_twice(harness: Harness) -> None:
    harness.start()
    command = harness.command(CommandType.DISPATCH, 7)
    harness.send(command)
    harness.start()
    harness.send(command)
    assert len(harness.printer.started) == 1
    assert harness.link.acks()[-1].status is AckStatus.ACCEPTED


def test_expired_command_is_declined(harness: Harness) -> None:
    harness.start()
    command = harness.command(CommandType.DISPATCH, 7, ttl=5)
    harness.clock.advance(5)
    harness.send(command)
    assert [(a.status, a.reason) for a in harness.link.acks()] == [(AckStatus.DECLINED, "expired")]
    assert harness.printer.started == []


def test_malformed_command_is_dropped(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.start()
    harness.send_raw(b'{"v": 1, "type": "dispatch"}')
    harness.send_raw(b"\xff not json")
    assert harness.link.acks() == []
    assert caplog.text.count("dropped a malformed command") == 2


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (PrinterSnapshot(operational=False), "printer is not operational"),
        (PrinterSnapshot(operational=False, error="MAXTEMP"), "printer is not operational: MAXTEMP"),
        (PrinterSnapshot(operational=True, printing=True, file_path="mine.gcode"), "busy with a local print"),
        (PrinterSnapshot(operational=True, paused=True, file_path="mine.gcode"), "busy with a local print"),
    ],
)
def test_dispatch_refused_by_printer_state(harness: Harness, snapshot: PrinterSnapshot, reason: str) -> None:
    harness.printer.state = snapshot
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    assert [(a.status, a.reason) for a in harness.link.acks()] == [(AckStatus.DECLINED, reason)]
    assert harness.fetcher.fetched == []


def finishing(harness: Harness) -> None:
    """The printer runs its last print's end script: OctoPrint says printing and finishing."""
    harness.printer.state = PrinterSnapshot(
        operational=True, printing=True, finishing=True, file_path="last.gcode", progress=100.0
    )


def test_a_dispatch_during_the_end_script_waits_for_the_printer_then_starts(harness: Harness) -> None:
    finishing(harness)
    harness.start()
    command = harness.command(CommandType.DISPATCH, 7)
    harness.send(command)
    assert harness.link.acks() == [] and harness.printer.started == []  # no answer yet: it waits
    harness.clock.advance(3)
    harness.node.tick()
    harness.send(command)  # the fleet's re-send while it waits changes nothing
    assert harness.link.acks() == []
    harness.printer.state = PrinterSnapshot(operational=True)  # the end script is over
    harness.clock.advance(1)
    harness.node.tick()
    assert [a.status for a in harness.link.acks()] == [AckStatus.ACCEPTED]
    assert len(harness.printer.started) == 1


def test_a_printer_that_stays_finishing_declines_after_the_wait(harness: Harness) -> None:
    finishing(harness)
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.clock.advance(14)
    harness.node.tick()
    assert harness.link.acks() == []
    harness.clock.advance(2)
    harness.node.tick()
    assert [(a.status, a.reason) for a in harness.link.acks()] == [
        (AckStatus.DECLINED, "busy with a local print")
    ]
    assert harness.printer.started == []


def test_dispatch_refused_while_a_fleet_job_runs_or_awaits_bed_clear(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.send(harness.command(CommandType.DISPATCH, 8))
    assert harness.link.acks()[-1].reason == "already has fleet job 7"

    harness.node.on_print_done(harness.printer.finish())
    assert harness.node.current_job().phase is JobPhase.DONE
    assert harness.link.statuses()[-1].state is NodeState.AWAITING_BED_CLEAR
    harness.send(harness.command(CommandType.DISPATCH, 9))
    assert harness.link.acks()[-1].reason == "waiting for the bed to be cleared after job 7"

    harness.send(harness.command(CommandType.BED_CLEARED, 7))
    assert harness.link.acks()[-1].status is AckStatus.DONE
    assert harness.node.current_job() is None
    assert harness.link.statuses()[-1].state is NodeState.IDLE
    harness.send(harness.command(CommandType.DISPATCH, 9))
    assert harness.link.acks()[-1].status is AckStatus.ACCEPTED
    assert [e.type for e in harness.link.events()] == [
        EventType.JOB_STARTED,
        EventType.JOB_DONE,
        EventType.BED_CLEARED,
        EventType.JOB_STARTED,
    ]


def test_a_bed_cleared_while_the_end_script_runs_is_never_reported_as_a_local_print(harness: Harness) -> None:
    # OctoPrint says the print is done while it still runs the end script (state Finishing, a printing
    # state): a bed cleared at once must not make the fleet think the printer took up a print of its own.
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    path = harness.printer.state.file_path
    harness.printer.state = replace(harness.printer.state, finishing=True, progress=100.0)
    harness.printer.results[path or ""] = PrintOutcome.DONE
    harness.node.on_print_done(path or "")
    assert harness.link.statuses()[-1].state is NodeState.AWAITING_BED_CLEAR
    harness.send(harness.command(CommandType.BED_CLEARED, 7))
    assert harness.link.statuses()[-1].state is NodeState.IDLE
    assert NodeState.BUSY_LOCAL not in [s.state for s in harness.link.statuses()]
    harness.printer.state = PrinterSnapshot(operational=True)  # the end script is over
    harness.node.tick()
    assert harness.link.statuses()[-1].state is NodeState.IDLE


def test_failed_start_answers_failed_and_keeps_the_printer_free(harness: Harness) -> None:
    harness.printer.fail_start = True
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    ack = harness.link.acks()[-1]
    assert (ack.status, ack.reason) == (AckStatus.FAILED, "could not start the print: printer said no")
    assert harness.node.current_job() is None


def test_pause_resume_cancel_act_only_on_the_current_job(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.send(harness.command(CommandType.PAUSE, 8))
    assert harness.link.acks()[-1].status is AckStatus.DECLINED
    assert harness.printer.actions == []

    harness.send(harness.command(CommandType.PAUSE, 7))
    name = harness.printer.state.file_path
    harness.node.on_print_paused(name)
    harness.send(harness.command(CommandType.RESUME, 7))
    harness.node.on_print_resumed(name)
    harness.send(harness.command(CommandType.CANCEL, 7))
    harness.node.on_print_cancelled(name)
    assert harness.printer.actions == ["pause", "resume", "cancel"]
    assert [a.status for a in harness.link.acks()[-3:]] == [AckStatus.ACCEPTED] * 3
    assert [e.type for e in harness.link.events()] == [
        EventType.JOB_STARTED,
        EventType.JOB_PAUSED,
        EventType.JOB_RESUMED,
        EventType.JOB_CANCELLED,
    ]
    assert harness.node.current_job().phase is JobPhase.CANCELLED


def test_local_print_events_are_not_reported_as_fleet_events(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.node.on_print_done("some/other.gcode")
    assert [e.type for e in harness.link.events()] == [EventType.JOB_STARTED]
    assert harness.node.current_job().phase is JobPhase.PRINTING


# -- owner's offers ------------------------------------------------------------------------------


def offering(harness: Harness) -> Harness:
    harness.settings = NodeSettings(auto_accept=False, accept_timeout_s=120)
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7, id="offer-1"))
    assert [(a.status, a.command_id) for a in harness.link.acks()] == [(AckStatus.PENDING, "offer-1")]
    assert harness.link.acks()[0].answer_within_s == 120  # the fleet holds the job that long
    assert harness.node.pending_offer().command.job.job_id == 7
    assert harness.printer.started == []
    return harness


def test_accepted_offer_starts_the_job(harness: Harness) -> None:
    offering(harness)
    assert harness.node.accept_offer().result(timeout=1) is True
    assert harness.node.pending_offer() is None
    assert len(harness.printer.started) == 1
    assert [a.status for a in harness.link.acks()] == [AckStatus.PENDING, AckStatus.ACCEPTED]
    assert harness.node.accept_offer().result(timeout=1) is False


def test_declined_offer_is_declined_to_the_fleet(harness: Harness) -> None:
    offering(harness)
    assert harness.node.decline_offer().result(timeout=1) is True
    ack = harness.link.acks()[-1]
    assert (ack.status, ack.command_id, ack.reason) == (
        AckStatus.DECLINED,
        "offer-1",
        "declined by the printer's owner",
    )
    assert harness.printer.started == []


def test_unanswered_offer_is_declined_after_the_timeout(harness: Harness) -> None:
    offering(harness)
    harness.clock.advance(119)
    harness.node.tick()
    assert harness.node.pending_offer() is not None
    harness.clock.advance(1)
    harness.node.tick()
    assert harness.node.pending_offer() is None
    assert harness.link.acks()[-1].status is AckStatus.DECLINED
    assert "within 120 s" in harness.link.acks()[-1].reason


def test_an_answer_after_the_deadline_is_not_taken(harness: Harness) -> None:
    offering(harness)
    harness.clock.advance(121)  # the owner clicks before the node's timer has declined the offer
    assert harness.node.accept_offer().result(timeout=1) is False
    ack = harness.link.acks()[-1]
    assert (ack.status, ack.command_id) == (AckStatus.DECLINED, "offer-1")
    assert "deadline" in ack.reason
    assert harness.printer.started == [] and harness.node.pending_offer() is None


def test_offer_survives_a_restart_and_a_repeated_command_gets_pending_again(harness: Harness) -> None:
    offering(harness)
    harness.start()
    assert harness.node.pending_offer().command.id == "offer-1"
    harness.clock.advance(20)
    harness.send(harness.command(CommandType.DISPATCH, 7, id="offer-1"))
    assert harness.link.acks()[-1].status is AckStatus.PENDING
    assert harness.link.acks()[-1].answer_within_s == 100  # the time the owner has left
    assert harness.node.accept_offer().result(timeout=1) is True
    assert len(harness.printer.started) == 1


# -- status --------------------------------------------------------------------------------------


def test_status_is_rate_limited_while_printing_but_state_changes_go_at_once(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    count = len(harness.link.statuses())
    for step in range(1, 11):
        harness.printer.state = replace(harness.printer.state, progress=float(step))
        harness.clock.advance(0.25)
        harness.node.printer_changed()
    # 2.5 s of changes every 0.25 s: one message a second at most.
    assert len(harness.link.statuses()) - count == 2
    harness.node.on_print_paused(harness.printer.state.file_path)
    harness.printer.pause()
    harness.node.printer_changed()
    assert harness.link.statuses()[-1].state is NodeState.PAUSED
    harness.clock.advance(1)
    harness.node.tick()
    assert harness.link.statuses()[-1].progress == 10.0


def test_unchanged_status_is_not_repeated(harness: Harness) -> None:
    harness.start()
    for _ in range(5):
        harness.clock.advance(2)
        harness.node.printer_changed()
    assert len(harness.link.statuses()) == 1


# -- journal across restarts and reconnects ------------------------------------------------------


def test_print_finished_while_offline_is_reported_done_after_restart(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.node.close()
    harness.printer.finish(PrintOutcome.DONE)  # nobody listening
    harness.start()
    assert [(e.type, e.job_id) for e in harness.link.events()] == [(EventType.JOB_DONE, 7)]
    assert harness.link.statuses()[-1].state is NodeState.AWAITING_BED_CLEAR


def test_print_with_unknown_outcome_is_reported_failed(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.node.close()
    harness.printer.state = PrinterSnapshot(operational=True)
    harness.start()
    event = harness.link.events()[-1]
    assert (event.type, event.message) == (
        EventType.JOB_FAILED,
        "the print stopped while the node was not running",
    )


def test_reconcile_waits_for_the_printer_to_connect(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.node.close()
    path = harness.printer.finish(PrintOutcome.DONE)
    harness.printer.state = PrinterSnapshot(operational=False)
    harness.start()
    assert harness.link.events() == []
    harness.printer.state = PrinterSnapshot(operational=True, file_path=path)
    harness.node.printer_changed()
    assert [e.type for e in harness.link.events()] == [EventType.JOB_DONE]


def test_events_while_disconnected_are_sent_on_reconnect(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.link.connected = False
    harness.node.on_print_done(harness.printer.finish())
    assert [e.type for e in harness.link.events()] == [EventType.JOB_STARTED]
    harness.link.connect()
    assert [e.type for e in harness.link.events()] == [EventType.JOB_STARTED, EventType.JOB_DONE]
    harness.link.connect()
    assert len(harness.link.events()) == 2, "a reported event is not sent again"


# -- threading -----------------------------------------------------------------------------------


class BlockingFetcher(FakeFetcher):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        assert self.release.wait(5), "test never released the download"
        return super().fetch(job, dest_dir)


def test_commands_run_on_the_worker_so_the_network_thread_never_waits(
    tmp_path: Path, harness: Harness
) -> None:
    fetcher = BlockingFetcher()
    link = FakeLink()
    node = PrinterNode(link, PRINTER_ID, FakePrinter(tmp_path / "printer"), tmp_path / "j.json", fetcher)
    link.on_connect = node.on_connected
    node.start()
    try:
        harness.link = link
        harness.clock.now = time.time()  # this node runs on the real clock
        harness.send(harness.command(CommandType.DISPATCH, 7))  # returns although the download blocks
        assert link.acks() == []
        fetcher.release.set()
        done = node.accept_offer()  # queued behind the dispatch: its result means the dispatch finished
        assert done.result(timeout=5) is False
        assert [a.status for a in link.acks()] == [AckStatus.ACCEPTED]
    finally:
        fetcher.release.set()
        node.close()


def test_worker_survives_a_failing_task_and_runs_idle_work() -> None:
    ticks = threading.Event()
    worker = Worker(idle=ticks.set, idle_interval=0.01)
    worker.start()
    try:
        failed = worker.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failed.result(timeout=2)
        assert worker.submit(lambda: 42).result(timeout=2) == 42
        assert ticks.wait(2)
    finally:
        worker.close()


# -- a dispatch's download, accepted first and taken again after a stop --------------------------


class StopsMidDownload(FakeFetcher):
    """Leaves half a file and then the node "dies" (an exception no node code catches)."""

    class Died(BaseException):
        pass

    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        self.fetched.append(job.job_id)
        dest_dir.mkdir(parents=True, exist_ok=True)
        (dest_dir / f"job-{job.job_id}-x.part").write_bytes(self.content[:2])
        raise self.Died()


def test_a_dispatch_is_accepted_before_its_download_starts(harness: Harness) -> None:
    seen: list[list[AckStatus]] = []

    class Watching(FakeFetcher):
        def fetch(self, job: JobRef, dest_dir: Path) -> Path:
            seen.append([a.status for a in harness.link.acks()])
            return super().fetch(job, dest_dir)

    harness.start(fetcher=Watching())
    harness.send(harness.command(CommandType.DISPATCH, 7))
    assert seen == [[AckStatus.ACCEPTED]]
    assert [a.status for a in harness.link.acks()] == [AckStatus.ACCEPTED]


def test_a_failed_download_answers_failed_and_leaves_the_printer_free(harness: Harness) -> None:
    class Refusing(FakeFetcher):
        def fetch(self, job: JobRef, dest_dir: Path) -> Path:
            raise DownloadError("sha256 of the downloaded file does not match the fleet's")

    harness.start(fetcher=Refusing())
    harness.send(harness.command(CommandType.DISPATCH, 8))
    assert [a.status for a in harness.link.acks()] == [AckStatus.ACCEPTED, AckStatus.FAILED]
    assert harness.node is not None and harness.node.current_job() is None
    harness.start()  # nothing left to take again; the next dispatch is taken
    assert harness.link.acks() == []
    harness.send(harness.command(CommandType.DISPATCH, 9))
    assert harness.link.acks()[-1].status is AckStatus.ACCEPTED


def test_a_download_cut_short_by_a_stop_is_fetched_again_and_started_once(harness: Harness) -> None:
    harness.start(fetcher=StopsMidDownload())
    command = harness.command(CommandType.DISPATCH, 7)
    with pytest.raises(StopsMidDownload.Died):
        harness.send(command)
    assert [a.status for a in harness.link.acks()] == [AckStatus.ACCEPTED]
    assert harness.printer.started == [] and list((harness.tmp / "downloads").glob("*.part"))

    harness.start()  # the restarted node: the stored file only ever comes from a whole download
    assert harness.fetcher.fetched == [7]
    assert harness.printer.started == [Path("crowdfab/7-benchy.gcode")]
    assert [(e.type, e.job_id) for e in harness.link.events()] == [(EventType.JOB_STARTED, 7)]
    assert not list((harness.tmp / "downloads").glob("*.part")), "the half file is removed"
    harness.send(command)  # delivered again: answered again, not acted on
    assert len(harness.printer.started) == 1
    assert harness.link.acks()[-1].status is AckStatus.ACCEPTED


def test_a_stopped_download_is_not_taken_again_when_the_printer_is_busy(harness: Harness) -> None:
    harness.start(fetcher=StopsMidDownload())
    with pytest.raises(StopsMidDownload.Died):
        harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.printer.state = PrinterSnapshot(operational=True, printing=True, file_path="local.gcode")
    harness.start()
    assert harness.printer.started == []
    ack = harness.link.acks()[-1]
    assert ack.status is AckStatus.FAILED and "busy with a local print" in ack.reason
    assert harness.node is not None and harness.node.current_job() is None


# -- events leave the journal once the broker has them --------------------------------------------


class Receipt:
    def __init__(self) -> None:
        self.delivered = False
        self.lost = False


class ConfirmingLink(FakeLink):
    """A link that, like MQTT's, says later whether the broker got what was published."""

    def __init__(self) -> None:
        super().__init__()
        self.receipts: list[Receipt] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Receipt:
        super().publish(topic, payload, qos=qos, retain=retain)
        self.receipts.append(Receipt())
        return self.receipts[-1]


def start_confirming(harness: Harness) -> tuple[PrinterNode, ConfirmingLink]:
    """The harness's node, on a :class:`ConfirmingLink`."""
    link = ConfirmingLink()
    harness.link = link
    node = PrinterNode(
        link,
        PRINTER_ID,
        harness.printer,
        harness.tmp / "journal.json",
        harness.fetcher,
        harness.settings,
        clock=harness.clock,
        executor=InlineExecutor(),
    )
    harness.node = node
    link.on_connect = node.on_connected
    node.start()
    return node, link


def unreported(harness: Harness) -> list[EventType]:
    return [e.type for e in Journal.load(harness.tmp / "journal.json").outbox]


def test_an_event_the_broker_never_confirmed_is_sent_again_by_the_next_start(harness: Harness) -> None:
    node, link = start_confirming(harness)  # a link whose broker has gone quiet
    harness.send(harness.command(CommandType.DISPATCH, 7))
    assert [e.type for e in link.events()] == [EventType.JOB_STARTED]
    node.tick()
    assert [e.type for e in link.events()] == [EventType.JOB_STARTED], "held by the link, not sent again"
    assert unreported(harness) == [EventType.JOB_STARTED]

    harness.start()  # stopped before the broker confirmed: the journal sends it again
    assert [(e.type, e.job_id) for e in harness.link.events()] == [(EventType.JOB_STARTED, 7)]


def test_an_event_leaves_the_journal_when_the_broker_confirms_it_and_a_lost_one_is_sent_again(
    harness: Harness,
) -> None:
    node, link = start_confirming(harness)
    harness.send(harness.command(CommandType.DISPATCH, 7))
    started = [r for (t, _, _), r in zip(link.published, link.receipts) if t.endswith("/events")]
    started[0].lost = True  # the link's queue was full: only publishing again can deliver it
    node.tick()
    assert [e.type for e in link.events()] == [EventType.JOB_STARTED] * 2
    link.receipts[-1].delivered = True
    node.tick()
    assert unreported(harness) == []


def test_a_failed_print_carries_the_printers_reason_to_the_fleet(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    path = harness.printer.finish(PrintOutcome.FAILED)
    reason = "lost the connection to the printer on /dev/ttyACM0: device reports readiness to read\0"
    harness.node.on_print_failed(path, reason + " " * 3 + "x" * 600)
    event = harness.link.events()[-1]
    assert event.type is EventType.JOB_FAILED and event.job_id == 7
    assert event.message.startswith(reason.rstrip("\0")) and len(event.message) == 500
    assert "\0" not in event.message  # the protocol refuses NUL: the event must still be sent


def test_a_failed_print_without_a_reason_sends_an_empty_message(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.DISPATCH, 7))
    harness.node.on_print_failed(harness.printer.finish(PrintOutcome.FAILED))
    assert harness.link.events()[-1].message == ""
