"""The price list and charges: exact money, lines that add up, bad input refused with its field named."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.economy.money import check_currency, check_price, format_amount, major, to_minor
from fleet.economy.pricing import JobFacts, LineKind, PriceList, Unfinished, estimate, settle
from fleet.errors import Invalid

LIST = {
    "per_gram": {"PLA": "0.03", "PETG": "0.045"},
    "free_materials": ["PVA"],
    "printer_rates": {"xl-1": "2.50"},
    "classes": {"big": {"per_hour": "1.75", "printers": ["big-1", "big-2"]}},
    "default_per_hour": "0.80",
    "minimum": "1.00",
    "unfinished": "share",
}


def facts(
    material: str = "PLA", grams: str = "100", seconds: str = "7200", printer: str | None = None
) -> JobFacts:
    return JobFacts(material, Decimal(grams), Decimal(seconds), printer)


def test_a_finished_print_pays_material_and_machine_time_line_by_line():
    prices = PriceList.from_dict(LIST)
    charge = settle(prices, facts(printer="xl-1"), "EUR", finished=True)
    assert [(line.kind, line.amount_minor) for line in charge.lines] == [
        (LineKind.MATERIAL, 300),  # 100 g at 0.03
        (LineKind.MACHINE, 500),  # 2 h at 2.50 (the printer's own rate)
    ]
    assert charge.total_minor == 800
    assert format_amount(charge.total_minor, "EUR") == "8.00 EUR"


def test_rates_come_from_the_printer_then_its_class_then_the_default():
    prices = PriceList.from_dict(LIST)
    assert prices.rate_for("xl-1") == (Decimal("2.5"), "printer xl-1")
    assert prices.rate_for("big-2") == (Decimal("1.75"), "class big")
    assert prices.rate_for("mini") == (Decimal("0.8"), "default rate")
    assert prices.rate_for(None) == (Decimal("0.8"), "default rate")


def test_a_small_print_is_topped_up_to_the_minimum():
    charge = estimate(PriceList.from_dict(LIST), facts(grams="5", seconds="600"), "EUR")
    assert charge.lines[-1].kind is LineKind.MINIMUM
    assert charge.total_minor == 100


def test_free_materials_and_variants():
    prices = PriceList.from_dict(LIST)
    free = estimate(prices, facts(material="PVA", seconds="0"), "EUR")
    assert free.lines[0].amount_minor == 0 and "free material" in free.lines[0].description
    # PLA+ is a PLA: it takes PLA's price.
    assert prices.price_of("PLA+") == (Decimal("0.03"), "PLA")
    assert prices.price_of("ABS") == (None, None)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [(Unfinished.FREE, 0), (Unfinished.SHARE, 400), (Unfinished.FULL, 800)],
)
def test_an_unfinished_print_follows_the_labs_rule(rule, expected):
    prices = PriceList.from_dict({**LIST, "unfinished": rule.value})
    charge = settle(prices, facts(printer="xl-1"), "EUR", finished=False, printed_share=Decimal("0.5"))
    assert charge.total_minor == expected
    if rule is not Unfinished.FULL:
        assert charge.lines[0].kind is LineKind.UNFINISHED


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"per_gram": {"PLA": "-0.01"}}, "per_gram.PLA", "must not be negative"),
        ({"per_gram": {"PLA": 0.03}}, "per_gram.PLA", "decimal number written as text"),
        ({"per_gram": {"UNOBTAINIUM": "1"}}, "per_gram.UNOBTAINIUM", "unknown material"),
        ({"minimum": "abc"}, "minimum", "decimal number"),
        ({"minimum": "NaN"}, "minimum", "finite"),
        ({"default_per_hour": "0.0000001"}, "default_per_hour", "at most 6 digits"),
        ({"unfinished": "half"}, "unfinished", "free, share or full"),
        ({"free_materials": ["PLA"]}, "free_materials", "both free and priced"),
        ({"classes": {"a": {"per_hour": "1", "printers": ["xl-1"]},
                      "b": {"per_hour": "1", "printers": ["xl-1"]}}}, "classes.b.printers", "two classes"),
        ({"colour": "red"}, "colour", "unknown price list entry"),
    ],
)  # fmt: skip
def test_a_bad_price_list_is_refused_naming_what_is_wrong(change, field, words):
    with pytest.raises(Invalid) as caught:
        PriceList.from_dict({**LIST, **change})
    assert caught.value.field == field
    assert words in caught.value.message


def test_the_price_list_survives_its_json_form_exactly():
    prices = PriceList.from_dict(LIST)
    assert PriceList.from_dict(prices.to_dict()) == prices
    assert prices.to_dict()["per_gram"]["PETG"] == "0.045"


def test_money_helpers_round_half_up_and_know_minor_units():
    assert to_minor(Decimal("0.005"), "EUR") == 1
    assert to_minor(Decimal("0.0049"), "EUR") == 0
    assert to_minor(Decimal("12.5"), "JPY") == 13
    assert major(1250, "EUR") == Decimal("12.50")
    assert str(major(1234, "KWD")) == "1.234"
    assert check_currency(" chf ") == "CHF"
    with pytest.raises(Invalid):
        check_currency("EURO")
    with pytest.raises(Invalid):
        check_price(True, "x")


prices_text = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False).map(
    str
)


@settings(max_examples=200, deadline=None)
@given(
    per_gram=prices_text,
    per_hour=prices_text,
    minimum=prices_text,
    rule=st.sampled_from(list(Unfinished)),
    grams=st.decimals(min_value=0, max_value=5000, places=2),
    seconds=st.integers(min_value=0, max_value=400 * 3600),
    share=st.decimals(min_value=-1, max_value=2, places=3),
    finished=st.booleans(),
    currency=st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_charge_lines_add_up_and_are_never_negative(
    per_gram, per_hour, minimum, rule, grams, seconds, share, finished, currency
):
    prices = PriceList.from_dict(
        {
            "per_gram": {"PLA": per_gram},
            "default_per_hour": per_hour,
            "minimum": minimum,
            "unfinished": rule.value,
        }
    )
    charge = settle(
        prices, JobFacts("PLA", grams, Decimal(seconds)), currency, finished=finished, printed_share=share
    )
    assert all(line.amount_minor >= 0 for line in charge.lines)
    assert charge.total_minor == sum(line.amount_minor for line in charge.lines)
    full = estimate(prices, JobFacts("PLA", grams, Decimal(seconds)), currency)
    assert full.total_minor >= to_minor(Decimal(minimum), currency)
    assert charge.total_minor <= full.total_minor
    assert isinstance(charge.total_minor, int)
