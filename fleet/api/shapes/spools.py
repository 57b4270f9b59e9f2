"""Spools: the record, adding and changing one, loading it on a printer, and a printer's own view."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, Field

from ... import spools
from ...app.spools import CHECKS, PrinterSpools
from ...errors import Invalid
from ...protocol import PRINTER_ID_RE
from .base import IdCursor, InputModel, Maybe, OutputModel, PageLimit, Timestamp


class Spool(OutputModel):
    id: int
    material: str = Field(description="Upper-case, such as PETG or PLA+")
    colour_name: str = Field(description="Such as black; jobs ask for a colour by this name (any case)")
    colour_hex: str = Field(description="#rrggbb")
    diameter_mm: float
    vendor: str
    net_grams: float = Field(description="Filament on a full spool")
    remaining_grams: float = Field(description="Filament left; never negative")
    price_per_kg: int = Field(description="Minor units of the lab's currency (cents) per kilogram, exact")
    printer_id: Optional[str] = Field(description="The printer it is loaded on; null: on its shelf")
    shelf: str = Field(description="Where it is kept when not loaded")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, spool: spools.Spool) -> Spool:
        return cls.copied(spool)


class Spools(OutputModel):
    """One page of the spools in id order; ``next_cursor`` fetches the next (null on the last page)."""

    spools: list[Spool]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")


def _where(value: Any) -> Any:
    if value not in ("shelf", "loaded"):
        raise Invalid("where must be shelf or loaded", field="where")
    return value


class SpoolsQuery(PageLimit):
    """Which page of the spools: ``limit`` after ``cursor``; ``where`` keeps shelf or loaded ones."""

    cursor: IdCursor = None
    where: Annotated[
        Optional[str],
        BeforeValidator(_where),
        Field(description="shelf: only spools on a shelf; loaded: only spools on a printer"),
    ] = None

    @property
    def on_shelf(self) -> Optional[bool]:
        return None if self.where is None else self.where == "shelf"


def _checked(name: str) -> BeforeValidator:
    """The service's own check of field ``name`` (so the API and the dashboard refuse alike)."""
    return BeforeValidator(CHECKS[name])


Grams = Annotated[float, Field(ge=0, le=spools.MAX_GRAMS, description="grams")]


class NewSpool(InputModel):
    """``POST /spools``: a spool a manager puts on a shelf; full unless ``remaining_grams`` says."""

    noun: ClassVar[str] = "spool field"

    material: Annotated[str, _checked("material"), Field(description="A known material, or a variant")]
    colour_name: Annotated[str, _checked("colour_name"), Field(max_length=32)]
    colour_hex: Annotated[str, _checked("colour_hex"), Field(pattern="^#[0-9A-Fa-f]{6}$")]
    diameter_mm: Annotated[float, _checked("diameter_mm"), Field(description="1.75, 2.85 or 3")] = 1.75
    vendor: Annotated[str, _checked("vendor"), Field(max_length=80)] = ""
    net_grams: Annotated[Grams, _checked("net_grams")]
    remaining_grams: Maybe[Annotated[Grams, _checked("remaining_grams")]] = None
    price_per_kg: Annotated[
        int,
        _checked("price_per_kg"),
        Field(ge=0, le=spools.MAX_PRICE_PER_KG, description="Whole minor units (cents); never a fraction"),
    ]
    shelf: Annotated[str, _checked("shelf"), Field(max_length=80)] = ""

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class SpoolChanges(InputModel):
    """``PATCH /spools/{id}``: only the fields named change (a weighed spool, a corrected price)."""

    noun: ClassVar[str] = "spool field"

    material: Maybe[Annotated[str, _checked("material")]] = None
    colour_name: Maybe[Annotated[str, _checked("colour_name"), Field(max_length=32)]] = None
    colour_hex: Maybe[Annotated[str, _checked("colour_hex"), Field(pattern="^#[0-9A-Fa-f]{6}$")]] = None
    diameter_mm: Maybe[Annotated[float, _checked("diameter_mm")]] = None
    vendor: Maybe[Annotated[str, _checked("vendor"), Field(max_length=80)]] = None
    net_grams: Maybe[Annotated[Grams, _checked("net_grams")]] = None
    remaining_grams: Maybe[Annotated[Grams, _checked("remaining_grams")]] = None
    price_per_kg: Maybe[Annotated[int, _checked("price_per_kg"), Field(ge=0, le=spools.MAX_PRICE_PER_KG)]] = (
        None
    )
    shelf: Maybe[Annotated[str, _checked("shelf"), Field(max_length=80)]] = None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def _printer_id(value: Any) -> Any:
    if not isinstance(value, str) or not PRINTER_ID_RE.match(value):
        raise Invalid("printer_id must be a printer's id", field="printer_id")
    return value


class LoadSpool(InputModel):
    """``POST /spools/{id}/load``: the printer to load it on."""

    printer_id: Annotated[str, BeforeValidator(_printer_id), Field(pattern=PRINTER_ID_RE.pattern)]


class UnloadSpool(InputModel):
    """``POST /spools/{id}/unload``: optionally, the shelf it goes back to."""

    shelf: Maybe[Annotated[str, _checked("shelf"), Field(max_length=80)]] = None


class LoadOwnSpool(InputModel):
    """``PUT /printers/{id}/spool``: the shelf spool the printer's owner loads on it."""

    spool_id: Annotated[int, Field(ge=1)]


class PrinterSpool(OutputModel):
    """A printer's own view (its node): the spool loaded on it, and the spools on the shelves."""

    loaded: Optional[Spool] = Field(description="null: no spool loaded (the printer's material is unknown)")
    shelf: list[Spool] = Field(description="Spools not loaded anywhere, first 100 by id")

    @classmethod
    def of(cls, view: PrinterSpools) -> PrinterSpool:
        return cls(
            loaded=None if view.loaded is None else Spool.of(view.loaded),
            shelf=[Spool.of(s) for s in view.shelf],
        )
