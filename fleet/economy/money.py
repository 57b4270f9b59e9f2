"""Money, exactly: prices as Decimal in the lab's currency, amounts as integer minor units."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import Invalid

#: Digits after the point of currencies whose minor unit is not the cent (ISO 4217); others have 2.
MINOR_DIGITS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "VND": 0,
    "XOF": 0,
    "XAF": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "JOD": 3,
}
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: The largest price a list may hold, in major units (a sanity bound, not a business rule).
MAX_PRICE = Decimal("1000000")
#: Digits after the point a price may have (0.0005 per gram is a real filament price).
PRICE_PLACES = 6


def check_currency(value: Any, field: str = "currency") -> str:
    """An ISO 4217 code such as EUR, CHF or USD."""
    if not isinstance(value, str) or not CURRENCY_RE.match(value.strip().upper()):
        raise Invalid(f"{field} must be a three-letter ISO 4217 code such as EUR, USD or CHF", field=field)
    return value.strip().upper()


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


def check_price(value: Any, field: str) -> Decimal:
    """A price in major units: a decimal string or an integer (never a float, which is not exact)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise Invalid(f'{field} must be a decimal number written as text, such as "0.03"', field=field)
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(  # noqa: B904 - the Decimal error says less than this
            f'{field} must be a decimal number such as "0.03", not {str(value)[:40]!r}', field=field
        )
    if not price.is_finite():
        raise Invalid(f"{field} must be a finite decimal number", field=field)
    if price < 0:
        raise Invalid(f"{field} must not be negative (it is {price})", field=field)
    if price > MAX_PRICE:
        raise Invalid(f"{field} must be at most {MAX_PRICE}", field=field)
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_PLACES:
        raise Invalid(f"{field} may have at most {PRICE_PLACES} digits after the point", field=field)
    return price.normalize() if price != 0 else Decimal(0)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount in major units, rounded half up to a whole number of the currency's minor unit."""
    scaled = amount.scaleb(minor_digits(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def major(minor: int, currency: str) -> Decimal:
    """Minor units as an exact Decimal in major units (1250 EUR cents → Decimal("12.50"))."""
    digits = minor_digits(currency)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def format_amount(minor: int, currency: str) -> str:
    """'12.50 EUR'."""
    return f"{major(minor, currency)} {currency}"


def plain(price: Decimal) -> str:
    """A price as text without exponent ("0.03", "2"), as the API and the CSV write it."""
    text = format(price, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
