"""The lab's price list, and what a job costs: estimated before it is confirmed, fixed when it ends.

A charge is a list of lines (material grams times price per gram, machine hours times rate per hour, the
minimum's top-up), each rounded half up to the currency's minor unit; the total is their sum, so
what a member reads line by line adds up to what the ledger holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any, Optional

from ..errors import Invalid
from ..gcode.materials import DENSITY_G_CM3, family
from .money import check_price, plain, to_minor

#: Names a price list may use for a printer class.
CLASS_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_ENTRIES = 500
GRAM = Decimal("0.01")
HOUR = Decimal("0.0001")


class Unfinished(str, Enum):
    """What a print that failed or was cancelled after it started costs."""

    FREE = "free"
    #: The printed share of the full charge's material and machine time (no minimum).
    SHARE = "share"
    FULL = "full"


class LineKind(str, Enum):
    MATERIAL = "material"
    MACHINE = "machine"
    MINIMUM = "minimum"
    UNFINISHED = "unfinished"


def check_material_name(value: Any, field: str) -> str:
    """A material the lab knows (PLA, PETG, ... and their variants such as PLA+ or PETG-CF)."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 32:
        raise Invalid(f"{field}: a material name has 1 to 32 characters", field=field)
    name = value.strip().upper()
    if family(name, DENSITY_G_CM3) is None:
        known = ", ".join(sorted(DENSITY_G_CM3))
        raise Invalid(f"{field}: unknown material {name!r}; the lab knows {known}", field=field)
    return name


@dataclass(frozen=True)
class PriceClass:
    """Printers that share a rate per printer-hour (for example the large-format ones)."""

    per_hour: Decimal
    printers: frozenset[str]


@dataclass(frozen=True)
class PriceList:
    """The lab's prices, in its currency's major units; public to every member."""

    #: Material (upper case) → price per gram.
    per_gram: Mapping[str, Decimal] = field(default_factory=dict)
    #: Materials the lab gives away (their grams are listed at no charge).
    free_materials: frozenset[str] = frozenset()
    #: Printer id → its own rate per printer-hour.
    printer_rates: Mapping[str, Decimal] = field(default_factory=dict)
    #: Class name → its rate and printers.
    classes: Mapping[str, PriceClass] = field(default_factory=dict)
    #: Rate per printer-hour of every printer without its own or its class's.
    default_per_hour: Decimal = Decimal(0)
    #: The least a finished print costs.
    minimum: Decimal = Decimal(0)
    unfinished: Unfinished = Unfinished.SHARE

    def rate_for(self, printer_id: Optional[str]) -> tuple[Decimal, str]:
        """The rate per printer-hour of a printer (None: not known yet) and where it comes from."""
        if printer_id is not None:
            own = self.printer_rates.get(printer_id)
            if own is not None:
                return own, f"printer {printer_id}"
            for name in sorted(self.classes):
                if printer_id in self.classes[name].printers:
                    return self.classes[name].per_hour, f"class {name}"
        return self.default_per_hour, "default rate"

    def price_of(self, material: Optional[str]) -> tuple[Optional[Decimal], Optional[str]]:
        """The price per gram of a material, and the price list's entry it comes from (PLA+ → PLA)."""
        if material is None:
            return None, None
        name = material.strip().upper()
        if name in self.free_materials:
            return Decimal(0), name
        key = family(name, set(self.per_gram) | set(self.free_materials))
        if key is None:
            return None, None
        return (Decimal(0) if key in self.free_materials else self.per_gram[key]), key

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_gram": {k: plain(v) for k, v in sorted(self.per_gram.items())},
            "free_materials": sorted(self.free_materials),
            "printer_rates": {k: plain(v) for k, v in sorted(self.printer_rates.items())},
            "classes": {
                name: {"per_hour": plain(c.per_hour), "printers": sorted(c.printers)}
                for name, c in sorted(self.classes.items())
            },
            "default_per_hour": plain(self.default_per_hour),
            "minimum": plain(self.minimum),
            "unfinished": self.unfinished.value,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PriceList:
        """A price list from its JSON form, every entry checked; the first wrong one is named."""
        if not isinstance(data, dict):
            raise Invalid("a price list must be a JSON object")
        unknown = sorted(set(data) - set(cls().to_dict()))
        if unknown:
            raise Invalid(f"unknown price list entry: {', '.join(unknown)}", field=unknown[0])
        per_gram: dict[str, Decimal] = {}
        for name, price in _object(data, "per_gram").items():
            material = check_material_name(name, f"per_gram.{name}")
            if material in per_gram:
                raise Invalid(f"per_gram names {material} twice", field=f"per_gram.{name}")
            per_gram[material] = check_price(price, f"per_gram.{name}")
        free = data.get("free_materials", [])
        if not isinstance(free, list) or len(free) > MAX_ENTRIES:
            raise Invalid("free_materials must be a list of material names", field="free_materials")
        free_materials = frozenset(check_material_name(m, "free_materials") for m in free)
        both = sorted(free_materials & set(per_gram))
        if both:
            raise Invalid(f"{both[0]} is both free and priced per gram: keep one", field="free_materials")
        rates: dict[str, Decimal] = {}
        for printer_id, price in _object(data, "printer_rates").items():
            _check_key(printer_id, "printer_rates")
            rates[printer_id] = check_price(price, f"printer_rates.{printer_id}")
        classes: dict[str, PriceClass] = {}
        owner: dict[str, str] = {}
        for name, entry in _object(data, "classes").items():
            where = f"classes.{name}"
            if not isinstance(name, str) or not 1 <= len(name) <= 32 or not set(name) <= CLASS_NAME_CHARS:
                raise Invalid(
                    f"{where}: a class name is 1-32 lowercase letters, digits, '-' or '_'", field=where
                )
            if not isinstance(entry, dict) or set(entry) != {"per_hour", "printers"}:
                raise Invalid(f"{where} must be an object with per_hour and printers", field=where)
            printers = entry["printers"]
            if not isinstance(printers, list) or len(printers) > MAX_ENTRIES:
                raise Invalid(f"{where}.printers must be a list of printer ids", field=f"{where}.printers")
            for printer_id in printers:
                _check_key(printer_id, f"{where}.printers")
                if printer_id in owner and owner[printer_id] != name:
                    raise Invalid(
                        f"printer {printer_id} is in two classes ({owner[printer_id]} and {name}): a printer "
                        "has one rate",
                        field=f"{where}.printers",
                    )
                owner[printer_id] = name
            classes[name] = PriceClass(
                check_price(entry["per_hour"], f"{where}.per_hour"), frozenset(printers)
            )
        try:
            unfinished = Unfinished(data.get("unfinished", Unfinished.SHARE.value))
        except ValueError:
            raise Invalid(
                "unfinished must be free, share or full: what a failed or cancelled print costs",
                field="unfinished",
            ) from None
        return cls(
            per_gram=per_gram,
            free_materials=free_materials,
            printer_rates=rates,
            classes=classes,
            default_per_hour=check_price(data.get("default_per_hour", "0"), "default_per_hour"),
            minimum=check_price(data.get("minimum", "0"), "minimum"),
            unfinished=unfinished,
        )


def _object(data: dict[str, Any], key: str) -> dict[Any, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict) or len(value) > MAX_ENTRIES:
        raise Invalid(f"{key} must be a JSON object of at most {MAX_ENTRIES} entries", field=key)
    return value


def _check_key(value: Any, where: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise Invalid(f"{where}: a printer id is text of 1 to 64 characters", field=where)


@dataclass(frozen=True)
class JobFacts:
    """What a charge is computed from: the job's analysis, and where and how long it printed."""

    material: Optional[str]
    grams: Decimal
    seconds: Decimal
    printer_id: Optional[str] = None


@dataclass(frozen=True)
class ChargeLine:
    kind: LineKind
    description: str
    quantity: Decimal
    #: "g", "h" or "" (a top-up or a note).
    unit: str
    unit_price: Decimal
    amount_minor: int


@dataclass(frozen=True)
class Charge:
    currency: str
    lines: tuple[ChargeLine, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


def grams_of(value: Any) -> Decimal:
    """Grams from an analysis (a float in JSON), as an exact Decimal to the centigram; never negative."""
    try:
        grams = Decimal(str(value or 0)).quantize(GRAM, rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return Decimal(0)
    return grams if grams.is_finite() and grams > 0 else Decimal(0)


def seconds_of(value: Any) -> Decimal:
    try:
        seconds = Decimal(str(value or 0)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return Decimal(0)
    return seconds if seconds.is_finite() and seconds > 0 else Decimal(0)


def _lines(prices: PriceList, facts: JobFacts, currency: str, share: Decimal) -> list[ChargeLine]:
    lines = []
    grams = (facts.grams * share).quantize(GRAM, rounding=ROUND_HALF_UP)
    price, entry = prices.price_of(facts.material)
    if price is not None and grams > 0:
        free = entry in prices.free_materials or facts.material in prices.free_materials
        what = f"{plain(grams)} g of {facts.material}" + (" (free material)" if free else "")
        lines.append(
            ChargeLine(LineKind.MATERIAL, what, grams, "g", price, to_minor(grams * price, currency))
        )
    hours = (facts.seconds * share / 3600).quantize(HOUR, rounding=ROUND_HALF_UP)
    rate, source = prices.rate_for(facts.printer_id)
    if hours > 0:
        lines.append(
            ChargeLine(
                LineKind.MACHINE,
                f"{plain(hours)} printer-hours ({source})",
                hours,
                "h",
                rate,
                to_minor(hours * rate, currency),
            )
        )
    return lines


def estimate(prices: PriceList, facts: JobFacts, currency: str) -> Charge:
    """What a job should cost if it prints to the end (the charge :func:`settle` fixes at done)."""
    return settle(prices, facts, currency, finished=True)


def settle(
    prices: PriceList, facts: JobFacts, currency: str, *, finished: bool, printed_share: Decimal = Decimal(1)
) -> Charge:
    """The charge of a job that ended: in full when ``finished``, else by the lab's rule for a failed
    or cancelled print (free, the ``printed_share`` from 0 to 1, or full)."""
    if not finished and prices.unfinished is Unfinished.FREE:
        note = ChargeLine(
            LineKind.UNFINISHED,
            "the print did not finish: free under the lab's rule",
            Decimal(0),
            "",
            Decimal(0),
            0,
        )
        return Charge(currency, (note,))
    share = Decimal(1)
    if not finished and prices.unfinished is Unfinished.SHARE:
        share = min(Decimal(1), max(Decimal(0), printed_share)).quantize(HOUR, rounding=ROUND_HALF_UP)
    lines = _lines(prices, facts, currency, share)
    if not finished and prices.unfinished is Unfinished.SHARE:
        lines.insert(
            0,
            ChargeLine(
                LineKind.UNFINISHED,
                f"the print did not finish: {plain(share * 100)}% of it is charged (the lab's rule)",
                share,
                "",
                Decimal(0),
                0,
            ),
        )
        return Charge(currency, tuple(lines))
    floor = to_minor(prices.minimum, currency)
    subtotal = sum(line.amount_minor for line in lines)
    if subtotal < floor:
        lines.append(
            ChargeLine(
                LineKind.MINIMUM,
                "top-up to the lab's minimum charge",
                Decimal(1),
                "",
                prices.minimum,
                floor - subtotal,
            )
        )
    return Charge(currency, tuple(lines))
