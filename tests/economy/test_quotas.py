"""Quotas on their own: periods in the lab's time zone, limits that combine, the gate, the wording."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fleet.economy.periods import Period, bounds, check_period, check_time_zone, month_bounds, renewal_day
from fleet.economy.quotas import (
    Cap,
    Hold,
    Limits,
    Measure,
    Need,
    Quota,
    QuotaGate,
    Used,
    allowance,
    effective,
    make_quota,
)
from fleet.economy.wording import group_words, hold_words
from fleet.errors import Invalid

PARIS = "Europe/Paris"


def at(text: str, zone: str = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_periods_follow_the_labs_time_zone():
    now = at("2026-12-31T23:30")  # 22:30 in UTC
    start, end = bounds(Period.MONTH, now, PARIS)
    assert (start, end) == (at("2026-12-01T00:00"), at("2027-01-01T00:00"))
    assert renewal_day(Period.MONTH, now, PARIS) == date(2027, 1, 1)
    new_year = at("2027-01-01T00:30")  # already January in Paris, still December in UTC
    assert bounds(Period.MONTH, new_year, PARIS)[0] == at("2027-01-01T00:00")
    assert bounds(Period.MONTH, new_year, "UTC")[0] == at("2026-12-01T00:00", "UTC")
    # Weeks start on Monday; 2026-12-31 is a Thursday.
    assert bounds(Period.WEEK, now, PARIS)[0] == at("2026-12-28T00:00")
    # The day DST ends in Paris lasts 25 hours.
    day = bounds(Period.DAY, at("2026-10-25T12:00"), PARIS)
    assert day[1] - day[0] == 25 * 3600
    assert month_bounds(2026, 2, PARIS) == (at("2026-02-01T00:00"), at("2026-03-01T00:00"))


def test_a_period_or_zone_that_does_not_exist_is_refused():
    with pytest.raises(Invalid, match="no quota period 'year': use one of day, week, month"):
        check_period("year")
    with pytest.raises(Invalid, match="no time zone"):
        check_time_zone("Europe/Atlantis")
    with pytest.raises(Invalid, match="no month 2026-13"):
        month_bounds(2026, 13, PARIS)


def test_a_quota_is_read_and_checked():
    quota = make_quota({"period": "month", "printer_hours": "10", "cost": "20.50", "jobs_at_once": 2}, "EUR")
    assert quota == Quota(Period.MONTH, Limits(Decimal(10), None, 2050, 2))
    for bad, field in [
        ({"period": "fortnight", "grams": "5"}, "period"),
        ({"period": "day", "grams": "-5"}, "grams"),
        ({"period": "day", "jobs_at_once": 1.5}, "jobs_at_once"),
        ({"period": "day"}, "period"),
        ({"period": "day", "grams": "5", "spools": 1}, "spools"),
    ]:
        with pytest.raises(Invalid) as caught:
            make_quota(bad, "EUR")
        assert caught.value.field == field


def test_a_members_own_limit_replaces_the_groups_measure_by_measure():
    group = [Quota(Period.MONTH, Limits(printer_hours=Decimal(10), grams=Decimal(500)))]
    own = [Quota(Period.MONTH, Limits(printer_hours=Decimal(20))), Quota(Period.DAY, Limits(jobs_at_once=1))]
    assert effective(group, own) == {
        Period.MONTH: Limits(printer_hours=Decimal(20), grams=Decimal(500)),
        Period.DAY: Limits(jobs_at_once=1),
    }


def test_the_gate_counts_what_it_admits_and_holds_the_rest():
    limits = {Period.MONTH: Limits(printer_hours=Decimal(10), jobs_at_once=2)}
    mine = allowance(limits, {Period.MONTH: Used(seconds=9 * 3600)}, 0, {Period.MONTH: date(2027, 1, 1)})
    gate = QuotaGate({1: mine})
    assert gate.admit(1, Need(seconds=0.5 * 3600)) is None
    hold = gate.admit(1, Need(seconds=0.75 * 3600))
    assert hold is not None and hold.cap.measure is Measure.PRINTER_HOURS and hold.ahead == 0.5 * 3600
    assert gate.admit(1, Need(seconds=0.75 * 3600), lifted=True) is None  # a lifted job goes anyway
    assert gate.admit(2, Need(seconds=1e9)) is None  # no quota, no limit


def test_the_wait_is_worded_in_english_and_french():
    cap = Cap(Measure.PRINTER_HOURS, Period.MONTH, 10 * 3600, 9.5 * 3600, date(2027, 1, 1))
    hold = Hold(cap, 3600, 0)
    assert hold_words(hold) == (
        "waits: you have used 9.5 of your 10 printer-hours this month; your quota renews on 1 January"
    )
    assert hold_words(hold, "fr") == (
        "en attente : vous avez utilisé 9,5 de vos 10 heures-machine ce mois-ci ; "
        "votre quota se renouvelle le 1er janvier"
    )
    too_big = Hold(cap, 12 * 3600, 0)
    assert "it needs 12 printer-hours and your quota is 10 printer-hours a month" in hold_words(too_big)
    cost = Hold(Cap(Measure.COST, Period.WEEK, 2000, 1950, date(2026, 12, 7)), 100, 0)
    assert hold_words(cost, currency="EUR") == (
        "waits: you have used 19.50 of your 20.00 EUR this week; your quota renews on 7 December"
    )
    at_once = Hold(Cap(Measure.JOBS_AT_ONCE, None, 2, 2), 1, 0)
    assert "2 of your 2 jobs at once" in hold_words(at_once)
    assert group_words("pro", 2) == "your membership group pro adds 2 to its priority"
    assert group_words("pro", 2, "fr") == "votre groupe pro ajoute 2 à sa priorité"
