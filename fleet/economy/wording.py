"""What a member reads when a quota holds their job, in English and in French.

Plain functions of plain values, like :mod:`fleet.scheduler.wording`: "waits: you have used 9.5 of
your 10 printer-hours this month; your quota renews on 1 January".
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional

from .money import major
from .periods import Period
from .quotas import Hold, Measure

MONTHS = {
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
    "fr": [
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ],
}  # fmt: skip
THIS = {
    "en": {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"},
    "fr": {Period.DAY: "aujourd'hui", Period.WEEK: "cette semaine", Period.MONTH: "ce mois-ci"},
}
A_PERIOD = {
    "en": {Period.DAY: "a day", Period.WEEK: "a week", Period.MONTH: "a month"},
    "fr": {Period.DAY: "par jour", Period.WEEK: "par semaine", Period.MONTH: "par mois"},
}


def number(value: float, lang: str) -> str:
    """9.5 or 9,5; whole numbers without decimals; at most one decimal."""
    rounded = Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = format(rounded.normalize() if rounded == rounded.to_integral() else rounded, "f")
    if "E" in text or "e" in text:
        text = str(int(rounded))
    return text.replace(".", ",") if lang == "fr" else text


def day(when: date, lang: str) -> str:
    """'1 January' / '1er janvier'."""
    month = MONTHS[lang][when.month - 1]
    if lang == "fr":
        return f"{'1er' if when.day == 1 else when.day} {month}"
    return f"{when.day} {month}"


def amount(value: float, measure: Measure, lang: str, currency: str) -> str:
    if measure is Measure.PRINTER_HOURS:
        return number(value / 3600, lang)
    if measure is Measure.COST:
        text = str(major(round(value), currency))
        return text.replace(".", ",") if lang == "fr" else text
    return number(value, lang)


def unit(measure: Measure, lang: str, currency: str) -> str:
    if measure is Measure.PRINTER_HOURS:
        return "printer-hours" if lang == "en" else "heures-machine"
    if measure is Measure.GRAMS:
        return "g"
    return currency


def hold_words(hold: Hold, lang: str = "en", currency: str = "EUR", group: Optional[str] = None) -> str:
    """Why a quota holds a job, from 'waits:' on."""
    cap = hold.cap
    fr = lang == "fr"
    if cap.measure is Measure.JOBS_AT_ONCE:
        limit = int(cap.limit)
        if fr:
            return (
                f"en attente : vous avez déjà {int(cap.used + hold.ahead)} impression(s) en cours, "
                f"et votre quota en permet {limit} à la fois ; elle démarre quand l'une se termine"
            )
        return (
            f"waits: you already have {int(cap.used + hold.ahead)} of your {limit} jobs at once on printers; "
            "it starts when one of them ends"
        )
    assert cap.period is not None
    what = unit(cap.measure, lang, currency)
    limit_text = amount(cap.limit, cap.measure, lang, currency)
    if hold.need > cap.limit:
        if fr:
            return (
                f"en attente : elle demande {amount(hold.need, cap.measure, lang, currency)} {what} et votre "
                f"quota est de {limit_text} {what} {A_PERIOD[lang][cap.period]} ; un responsable peut lever "
                "la limite pour cette impression"
            )
        return (
            f"waits: it needs {amount(hold.need, cap.measure, lang, currency)} {what} and your quota is "
            f"{limit_text} {what} {A_PERIOD[lang][cap.period]}; a manager can lift the limit for this job"
        )
    used = amount(cap.used, cap.measure, lang, currency)
    this = THIS[lang][cap.period]
    if fr:
        text = f"en attente : vous avez utilisé {used} de vos {limit_text} {what} {this}"
        if hold.ahead > 0:
            text += (
                f" (et {amount(hold.ahead, cap.measure, lang, currency)} de plus vont aux impressions devant)"
            )
        if cap.renews is not None:
            text += f" ; votre quota se renouvelle le {day(cap.renews, lang)}"
        return text
    text = f"waits: you have used {used} of your {limit_text} {what} {this}"
    if hold.ahead > 0:
        text += f" (and {amount(hold.ahead, cap.measure, lang, currency)} more go to your jobs ahead in line)"
    if cap.renews is not None:
        text += f"; your quota renews on {day(cap.renews, lang)}"
    return text


def group_words(group: str, priority: int, lang: str = "en") -> str:
    """'your membership group pro adds 2 to its priority'."""
    if lang == "fr":
        verb = "ajoute" if priority > 0 else "retire"
        return f"votre groupe {group} {verb} {abs(priority)} à sa priorité"
    verb = "adds" if priority > 0 else "takes"
    towards = "to" if priority > 0 else "from"
    return f"your membership group {group} {verb} {abs(priority)} {towards} its priority"
