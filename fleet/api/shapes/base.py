"""What every API shape shares: strict input bodies, output records, timestamps, boxes, the error body.

Input models are strict (``true`` is no number, ``"3"`` no integer) and refuse fields they do not
know; a failed check becomes the fleet's :class:`~fleet.errors.Invalid` naming the field, so the API
keeps its one error shape. Output models hold the fleet's values (epoch seconds, enums) and write the
API's JSON (ISO 8601 times, enum values); both feed the OpenAPI document.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Optional, Self, TypeVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ... import geometry
from ...app.checks import check_volume
from ...errors import Invalid

In = TypeVar("In", bound="InputModel")
T = TypeVar("T")


def iso(ts: Optional[float]) -> Optional[str]:
    """Epoch seconds as ISO 8601 in UTC with a ``Z``, to the second (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso_text(ts: float) -> str:
    text = iso(ts)
    assert text is not None
    return text


#: A moment: epoch seconds inside the fleet, ISO 8601 (UTC, ``Z``) on the wire.
Timestamp = Annotated[
    float,
    PlainSerializer(_iso_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _NeverNull:
    """Drops ``null`` from a field's JSON Schema: None in Python is "absent", never null on the wire."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        kept = [s for s in found.get("anyOf", ()) if s != {"type": "null"}]
        if len(kept) == 1:
            found = {**{k: v for k, v in found.items() if k != "anyOf"}, **kept[0]}
        if found.get("default", 0) is None:  # absent is no value either
            del found["default"]
        return found


def _refuse_null(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        raise Invalid(f"{info.field_name} must not be null (leave it out instead)", field=info.field_name)
    return value


#: A field a body may leave out (None in Python) but never sends as null: a partial update's fields,
#: or what another member's job hides.
Maybe = Annotated[Optional[T], _NeverNull(), BeforeValidator(_refuse_null)]


class InputModel(BaseModel):
    """A request body or query: strict types, no unknown fields, errors as :class:`Invalid`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    #: How "unknown … field" errors name this body's fields ("member field", "setting").
    noun: ClassVar[str] = "field"
    #: The message for a field whose value has the wrong type or range, by top-level field name.
    messages: ClassVar[dict[str, str]] = {}

    @classmethod
    def parse(cls: type[In], data: Any) -> In:
        """Validate ``data`` (a parsed JSON object or form) into this model, or raise :class:`Invalid`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise invalid_from(cls, exc) from None

    def changes(self) -> dict[str, Any]:
        """Only the fields the request named, as plain JSON values (a partial update's changes)."""
        return self.model_dump(mode="json", exclude_unset=True)


def invalid_from(model: type[InputModel], exc: ValidationError) -> Invalid:
    """The first problem pydantic found, as the fleet's error naming the field (never echoing the value)."""
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(part) for part in error["loc"]]
    field = ".".join(loc) if loc else None
    if field is None:
        return Invalid(f"the request body is not acceptable: {error['msg']}")
    if error["type"] == "extra_forbidden":
        return Invalid(f"unknown {model.noun}: {field}", field=field)
    if error["type"] == "missing":
        return Invalid(f"{field} is required", field=field)
    message = model.messages.get(loc[0])
    if message is None:
        text = error["msg"]
        message = f"{field}: {text[:1].lower()}{text[1:]}"
    return Invalid(message, field=field)


#: Rows in one page of a listing unless the request asks for another number, and the most it may ask.
DEFAULT_PAGE = 100
MAX_PAGE = 500


def _id_cursor(value: Any) -> Any:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise Invalid("cursor must be the next_cursor of an earlier page, as it was sent", field="cursor")
    return int(value)


class PageLimit(InputModel):
    """How many rows a page of a listing holds; a query string, so unknown parameters are ignored."""

    model_config = ConfigDict(strict=False, extra="ignore", frozen=True)
    messages: ClassVar[dict[str, str]] = {
        "limit": f"limit must be a whole number from 1 to {MAX_PAGE}",
    }

    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Rows per page")


#: Where a listing keyed by a number continues: an earlier page's ``next_cursor``.
IdCursor = Annotated[
    Optional[int],
    BeforeValidator(_id_cursor),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,18}$", "description": "From next_cursor"}),
]


class PageQuery(PageLimit):
    """Which page of a listing in id order: ``limit`` rows after ``cursor``."""

    cursor: IdCursor = None


def next_cursor(after: Optional[Union[int, str]]) -> Optional[str]:
    """A page's ``next_after`` as the ``next_cursor`` the API sends (None: the last page)."""
    return None if after is None else str(after)


class OutputModel(BaseModel):
    """A response body. Fields in ``omittable`` appear only when set (another member's job hides some)."""

    model_config = ConfigDict(frozen=True)

    omittable: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The JSON the API sends (field order as declared)."""
        hidden = {name for name in self.omittable if name not in self.model_fields_set}
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude=hidden or None)
        return data

    @classmethod
    def copied(cls, record: object, **converted: Any) -> Self:
        """This shape with each field read from ``record``'s attribute of that name, but for ``converted``.

        The shapes mirror the records of :mod:`fleet.models`, so only what differs is spelled out. A field
        the record has no attribute for (a printer's ``live``) keeps its default.
        """
        copied = {
            name: getattr(record, name)
            for name in cls.model_fields
            if name not in converted and hasattr(record, name)
        }
        return cls(**copied, **converted)


class Error(OutputModel):
    """The one error body every failure answers with."""

    error: str
    message: Annotated[
        str, WithJsonSchema({"type": "string", "description": "What was wrong and what to do"})
    ]
    field: Optional[str] = None
    details: Any = None

    omittable: ClassVar[frozenset[str]] = frozenset({"field", "details"})


class Box(OutputModel):
    """An axis-aligned box in mm: a build volume, or the space a print takes."""

    min_x: float
    min_y: float
    min_z: float
    max_x: float
    max_y: float
    max_z: float

    @classmethod
    def of(cls, box: geometry.Box) -> Box:
        return cls(**box.to_dict())

    def to_box(self) -> geometry.Box:
        return geometry.Box(self.min_x, self.min_y, self.min_z, self.max_x, self.max_y, self.max_z)


def _volume(value: Any) -> Any:
    return Box.of(check_volume(value))


#: A printer's build volume in a request: every axis a finite number, min below max.
Volume = Annotated[Box, BeforeValidator(_volume)]


def parse_json_object(data: bytes) -> dict[str, Any]:
    """A request body as a JSON object, refusing what would fail past the edge with a clear error.

    JSON allows, and Python's parser takes, what the fleet cannot keep or send back: ``NaN`` and
    ``Infinity`` (no JSON number), unpaired surrogates and NUL characters in strings (no database
    stores them), and nesting deep enough to exhaust the parser.
    """
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Invalid("the request body must be UTF-8 JSON") from None
    except RecursionError:
        raise Invalid("the request body is nested too deeply") from None
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:  # a loop, not recursion: the parser took the nesting, so must this
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"a key in {where}" if where else "a key")
                pending.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{n}]", item) for n, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where)
    return body


def _no_constant(name: str) -> Any:
    raise Invalid(f"the request body holds {name}, which is not a JSON number")


def _check_text(text: str, where: str) -> None:
    """Names the field, never echoes the text: it may be a password."""
    if "\0" in text:
        raise Invalid(f"{where} must not hold a NUL character", field=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(
            f"{where} is not valid Unicode text (it holds an unpaired surrogate)", field=where
        ) from None
