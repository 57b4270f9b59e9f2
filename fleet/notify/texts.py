"""Each event's title and body in the member's language (English or French), from the event's data.

Rendered when a notification is sent, not when it is raised, so a member who changes language is
told in the new one. A value the data lacks shows as ``?`` rather than failing the delivery.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from .events import EventKind

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

#: (title, body) by language and kind; ``{name}`` takes the event's data.
TEXTS: dict[str, dict[EventKind, tuple[str, str]]] = {
    "en": {
        EventKind.JOB_STARTED: ("Your print started", "{filename} (job {job_id}) started on {printer_name}."),
        EventKind.JOB_DONE: ("Your print is done", "{filename} (job {job_id}) finished on {printer_name}."),
        EventKind.JOB_FAILED: (
            "Your print failed",
            "{filename} (job {job_id}) failed on {printer_name}: {reason}",
        ),
        EventKind.BED_CLEAR: (
            "Clear the plate",
            "{printer_name} waits for its plate to be cleared: take {filename} (job {job_id}) off it, "
            "then confirm on the printer or the dashboard.",
        ),
        EventKind.JOB_NEEDS_APPROVAL: (
            "Your job needs approval",
            "{filename} (job {job_id}) waits for a manager to approve it.",
        ),
        EventKind.JOB_APPROVED: ("Your job was approved", "{filename} (job {job_id}) is in the queue."),
        EventKind.JOB_REFUSED: ("Your job was refused", "{filename} (job {job_id}) was refused: {reason}"),
        EventKind.JOB_OFFERED: (
            "A job for your printer",
            "The fleet offered {filename} (job {job_id}) to your printer {printer_name}: accept or "
            "decline it there.",
        ),
        EventKind.PRINTER_ERROR: ("Printer error", "{printer_name} ({printer_id}) reports an error."),
        EventKind.PRINTER_OFFLINE: (
            "Printer offline",
            "{printer_name} ({printer_id}) has been offline for more than {minutes} minutes.",
        ),
        EventKind.SPOOL_LOW: (
            "Spool low",
            "The spool {spool} on {printer_name} ({printer_id}) is low: {remaining_g} g left.",
        ),
        EventKind.JOB_WAITING: (
            "A job waits",
            "{filename} (job {job_id}) has waited for more than {hours} hours.",
        ),
    },
    "fr": {
        EventKind.JOB_STARTED: (
            "Votre impression a commencé",
            "{filename} (tâche {job_id}) a commencé sur {printer_name}.",
        ),
        EventKind.JOB_DONE: (
            "Votre impression est terminée",
            "{filename} (tâche {job_id}) est terminée sur {printer_name}.",
        ),
        EventKind.JOB_FAILED: (
            "Votre impression a échoué",
            "{filename} (tâche {job_id}) a échoué sur {printer_name} : {reason}",
        ),
        EventKind.BED_CLEAR: (
            "Libérez le plateau",
            "{printer_name} attend que son plateau soit libéré : retirez {filename} (tâche {job_id}), "
            "puis confirmez sur l'imprimante ou le tableau de bord.",
        ),
        EventKind.JOB_NEEDS_APPROVAL: (
            "Votre tâche attend une validation",
            "{filename} (tâche {job_id}) attend qu'un responsable la valide.",
        ),
        EventKind.JOB_APPROVED: (
            "Votre tâche est validée",
            "{filename} (tâche {job_id}) est dans la file d'attente.",
        ),
        EventKind.JOB_REFUSED: (
            "Votre tâche est refusée",
            "{filename} (tâche {job_id}) a été refusée : {reason}",
        ),
        EventKind.JOB_OFFERED: (
            "Une tâche pour votre imprimante",
            "La flotte propose {filename} (tâche {job_id}) à votre imprimante {printer_name} : "
            "acceptez-la ou refusez-la sur place.",
        ),
        EventKind.PRINTER_ERROR: (
            "Erreur d'imprimante",
            "{printer_name} ({printer_id}) signale une erreur.",
        ),
        EventKind.PRINTER_OFFLINE: (
            "Imprimante hors ligne",
            "{printer_name} ({printer_id}) est hors ligne depuis plus de {minutes} minutes.",
        ),
        EventKind.SPOOL_LOW: (
            "Bobine presque vide",
            "La bobine {spool} de {printer_name} ({printer_id}) est presque vide : il reste {remaining_g} g.",
        ),
        EventKind.JOB_WAITING: (
            "Une tâche attend",
            "{filename} (tâche {job_id}) attend depuis plus de {hours} heures.",
        ),
    },
}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(kind: EventKind, data: Mapping[str, Any], language: str) -> tuple[str, str]:
    """The title and body of an event of ``kind`` for a reader of ``language`` (English if unknown)."""
    texts = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
    title, body = texts[kind]
    values = _Missing({k: v for k, v in data.items() if v is not None and v != ""})
    formatter = string.Formatter()
    return formatter.vformat(title, (), values), formatter.vformat(body, (), values)
