"""The history and statistics page: sums per member, the printers' daily utilisation, who sees what."""

from __future__ import annotations

import io
import re

import pytest

from fleet.gcode.generate import generate_box
from fleet.states import JobState
from fleet.web.stats import compute

#: A UTC midnight: day 0 of the scenario; "now" is noon of day 1.
DAY0 = 1_700_006_400.0
HOUR = 3600.0
NOW = DAY0 + 24 * HOUR + 12 * HOUR


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def run_job(svc, manager, member, *, size, start, end, outcome):
    """Submit a job, let the printer take it at ``start`` and end it at ``end`` with ``outcome``."""
    svc.clock.at = start
    box = generate_box(*size)
    job = svc.intake.submit_job(member, io.BytesIO(box.encode()), filename="box.gcode").jobs[0]
    assert svc.dispatcher.dispatch_pass() == [(job.id, "mk4")]
    svc.reports.printer_job_event("mk4", job.id, JobState.PRINTING, "started")
    svc.clock.at = end
    svc.reports.printer_job_event("mk4", job.id, outcome, "ended")
    svc.printers.confirm_bed_cleared(manager, "mk4")
    return svc.jobs.get_job(manager, job.id)


@pytest.fixture
def history(fleet, people, printer):
    """alice: 2 h done and 1 h failed on day 0; bob: 3 h done from 23:00 on day 0 to 02:00 on day 1."""
    svc = fleet.app
    svc.clock = Clock(DAY0)
    m, alice, bob = people["manager"], people["alice"], people["bob"]
    done, failed = JobState.DONE, JobState.FAILED
    jobs = {
        "a1": run_job(svc, m, alice, size=(30, 20, 5), start=DAY0 + HOUR, end=DAY0 + 3 * HOUR, outcome=done),
        "a2": run_job(
            svc, m, alice, size=(20, 20, 4), start=DAY0 + 4 * HOUR, end=DAY0 + 5 * HOUR, outcome=failed
        ),
        "b1": run_job(
            svc, m, bob, size=(40, 30, 6), start=DAY0 + 23 * HOUR, end=DAY0 + 26 * HOUR, outcome=done
        ),
    }
    svc.clock.at = NOW
    return jobs


def filament(jobs, key):
    return sum(j.analysis[key] for j in jobs)


def test_the_sums_per_member_and_per_printer(fleet, people, history):
    svc = fleet.app
    figures = compute(
        svc.board.print_history(people["manager"]),
        svc.printers.list_printers(),
        svc.members.member_names(people["manager"]),
        now=NOW,
    )
    rows = {r.name: r for r in figures.members}
    assert set(rows) == {"alice", "bob"}
    alice, bob = rows["alice"], rows["bob"]
    assert (alice.done, alice.failed, alice.hours) == (1, 1, pytest.approx(3.0))
    assert (bob.done, bob.failed, bob.hours) == (1, 0, pytest.approx(3.0))
    a_jobs = [history["a1"], history["a2"]]
    assert alice.filament_mm == pytest.approx(filament(a_jobs, "filament_length_mm"))
    assert alice.filament_g == pytest.approx(filament(a_jobs, "filament_weight_g"))
    assert bob.filament_mm == pytest.approx(history["b1"].analysis["filament_length_mm"])
    assert alice.filament_mm != pytest.approx(bob.filament_mm)  # different boxes, so a mix-up shows
    totals = figures.totals
    assert (totals.done, totals.failed, totals.hours) == (2, 1, pytest.approx(6.0))
    assert totals.filament_g == pytest.approx(alice.filament_g + bob.filament_g)

    (mk4,) = figures.printers
    assert len(mk4.bars) == 14 and mk4.bars[-1].day == DAY0 + 24 * HOUR
    # Day 0: 2 h + 1 h + bob's first hour; day 1: bob's last two hours; nothing before.
    assert [round(b.hours, 3) for b in mk4.bars[-2:]] == [4.0, 2.0]
    assert all(b.hours == 0 for b in mk4.bars[:-2])
    assert mk4.failures == 1
    assert mk4.bars[-2].height == pytest.approx(2 * mk4.bars[-1].height, abs=0.02)
    assert mk4.utilisation == pytest.approx(6.0 / (14 * 24))


def member_rows(page: str) -> dict[str, list[str]]:
    """The statistics table's rows: first cell → the numbers."""
    rows = {}
    table = page.split('data-stats="members"', 1)[1].split("</table>", 1)[0]
    for body in re.findall(r"<tr[^>]*>\s*<th scope=\"row\">(.*?)</tr>", table, re.S):
        name, rest = body.split("</th>", 1)
        rows[name.strip()] = re.findall(r"<td>([^<]*)</td>", rest)
    return rows


def test_the_page_shows_the_numbers_and_the_chart(browsers, history):
    response = browsers["manager"].get("/stats")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    rows = member_rows(page)
    grams = filament([history["a1"], history["a2"]], "filament_weight_g")
    metres = filament([history["a1"], history["a2"]], "filament_length_mm") / 1000
    assert rows["alice"] == ["1", "1", "3.0", f"{metres:.2f}", f"{grams:.0f}"]
    assert rows["bob"][:3] == ["1", "0", "3.0"]
    assert rows["Whole lab"][:3] == ["2", "1", "6.0"]
    svg = re.search(r"<svg[^>]*role=\"img\"[^>]*class=\"bars\"[^>]*>(.*?)</svg>", page, re.S)
    assert svg, "no chart"
    assert '<title id="chart-mk4-title">Daily utilisation of Prusa MK4</title>' in svg.group(1)
    assert "<desc id=" in svg.group(1)
    assert svg.group(1).count('<rect class="bar"') == 14
    # The table behind the chart: day 0 printed 4 hours, a sixth of the day.
    day0 = re.search(r"<time datetime=\"2023-11-15\">15/11</time></th><td>([^<]*)</td><td>([^<]*)</td>", page)
    assert day0 and day0.groups() == ("4.0", "17%")


def test_a_member_sees_only_their_own_row_and_the_lab_totals(browsers, history):
    page = browsers["alice"].get("/stats").get_data(as_text=True)
    rows = member_rows(page)
    assert set(rows) == {"alice", "Whole lab"}  # no other member's row, named or not
    assert "bob" not in page
    assert rows["Whole lab"][:3] == ["2", "1", "6.0"]
    bob_page = browsers["bob"].get("/stats").get_data(as_text=True)
    assert "alice" not in bob_page and set(member_rows(bob_page)) == {"bob", "Whole lab"}
    assert member_rows(bob_page)["bob"][:3] == ["1", "0", "3.0"]


def test_a_member_with_no_prints_still_gets_a_row(browsers, printer):
    rows = member_rows(browsers["alice"].get("/stats").get_data(as_text=True))
    assert rows["alice"] == ["0", "0", "0.0", "0.00", "0"]
    assert rows["Whole lab"][:3] == ["0", "0", "0.0"]


def period_rows(page: str, by: str) -> dict[str, list[str]]:
    """A period breakdown's table: first cell → the other cells."""
    table = page.split(f'data-stats="{by}-period"', 1)[1].split("</table>", 1)[0]
    return {
        name.strip(): re.findall(r"<td>([^<]*)</td>", rest)
        for name, rest in re.findall(r"<th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S)
    }


def test_the_period_breakdowns_chart_and_tabulate_members_printers_and_materials(browsers, history):
    page = browsers["manager"].get("/stats?from=2023-11-01&to=2023-11-15").get_data(as_text=True)
    assert re.findall(r'data-breakdown="(\w+)"', page) == ["member", "printer", "material"]  # no groups here
    members = period_rows(page, "member")
    # prints, done, failed, failure rate, hours, grams, median wait, 90th percentile wait
    assert members["alice"][:5] == ["2", "1", "1", "50%", "3.0"]
    assert members["bob"][:5] == ["1", "1", "0", "0%", "3.0"]
    assert members["Whole lab"][:3] == ["3", "2", "1"]
    assert period_rows(page, "printer")["Prusa MK4"][:2] == ["3", "2"]
    assert period_rows(page, "material")["PLA"][0] == "3"
    charts = re.findall(r'<svg[^>]*class="hbars"[^>]*>(.*?)</svg>', page, re.S)
    assert len(charts) == 6 and charts[0].count('<rect class="bar"') == 2
    assert 'href="/stats.csv?by=printer&amp;from=2023-11-01&amp;to=2023-11-15"' in page
    # The day before: nothing started then.
    empty = browsers["manager"].get("/stats?from=2023-11-13&to=2023-11-13").get_data(as_text=True)
    assert period_rows(empty, "member") == {"Whole lab": ["0", "0", "0", "—", "0.0", "0", "—", "—"]}


def test_a_member_downloads_their_own_csv_and_a_bad_date_is_named(browsers, history):
    csv_text = (
        browsers["alice"].get("/stats.csv?by=member&from=2023-11-01&to=2023-11-15").get_data(as_text=True)
    )
    assert (
        "alice" in csv_text
        and "bob" not in csv_text
        and csv_text.splitlines()[-1].startswith("total,total,3,")
    )
    page = browsers["alice"].get("/stats?from=2023-11-01&to=2023-11-15").get_data(as_text=True)
    assert set(period_rows(page, "member")) == {"alice", "Whole lab"}
    wrong = browsers["alice"].get("/stats?from=2023-11-20&to=2023-11-01")
    shown = wrong.get_data(as_text=True)
    assert wrong.status_code == 200 and "the last day must be a real date, on or after the first" in shown
    assert 'name="from" value="2023-10-18"' in shown  # the last 30 days (today is the 16th) instead
    assert browsers["anonymous"].get("/stats.csv").status_code in (302, 303, 401)
