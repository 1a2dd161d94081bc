"""A template's declared fields (``template.json`` ``fields``) as a pydantic model its data must fit.

A field is ``{"type": "string" | "integer" | "number" | "boolean" | "array" | "object", "required":
true (default) | false, "max_length": n (strings), "max_items": n (arrays), "items": {...} (an array of
objects: their fields), "fields": {...} (an object's fields)}``. The model forbids undeclared keys and
converts nothing (a ``"2"`` is not an integer): data that does not fit is refused at the API, before
any charge, with each problem's location and type and never its value.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

from tidings.notifications.models import BodyText

FieldType = Literal["string", "integer", "number", "boolean", "array", "object"]


class FieldSpec(BaseModel):
    """One declared field."""

    model_config = ConfigDict(extra="forbid")

    type: FieldType
    required: bool = True
    max_length: int | None = Field(default=None, gt=0)
    max_items: int | None = Field(default=None, gt=0)
    items: dict[str, FieldSpec] | None = None
    fields: dict[str, FieldSpec] | None = None


def fields_model(name: str, fields: dict[str, FieldSpec]) -> type[BaseModel]:
    """The strict model of ``fields`` (nested objects and arrays of objects get their own models)."""
    definitions: dict[str, Any] = {}
    for key, spec in fields.items():
        annotation = _annotation(f"{name}_{key}", spec)
        definitions[key] = (annotation, ...) if spec.required else (annotation | None, None)
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid", strict=True), **definitions
    )
    return model


def _annotation(name: str, spec: FieldSpec) -> Any:
    if spec.type == "string":
        # Text that reaches an e-mail or an SMS: the same characters a raw receipt's text may hold.
        return Annotated[BodyText, Strict(), Field(max_length=spec.max_length or 2000)]
    if spec.type == "integer":
        return StrictInt
    if spec.type == "number":
        return StrictInt | StrictFloat
    if spec.type == "boolean":
        return StrictBool
    if spec.type == "object":
        return fields_model(name, spec.fields or {})
    item = fields_model(name, spec.items) if spec.items is not None else StrictStr
    return Annotated[list[item], Field(max_length=spec.max_items or 100)]  # type: ignore[valid-type]
