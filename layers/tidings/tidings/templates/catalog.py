"""Tidings' receipt and SMS templates: the catalogue in the layer, rendered in a sandboxed Jinja2.

The catalogue is data in the layer (``tidings/templates/catalog/<template_id>/``), reviewed and deployed
with the code that renders it:

- ``template.json``: ``default_locale``, the declared ``fields`` the data must fit
  (:mod:`tidings.templates.fields`), ``locales`` (each locale's ``sendgrid_template_id``, the SendGrid
  dynamic template it is published as) and an ``example`` of data (checked by the tests);
- ``<locale>/subject.txt``, ``<locale>/body.html`` and, for a template that texts too, ``<locale>/sms.txt``.

A locale resolves to itself, else its language (``fr-CA`` to ``fr``), else the template's default locale.
HTML is autoescaped (a shop's data never becomes markup); subject and SMS are plain text; the e-mail's
plain-text part is derived from its rendered HTML (:mod:`tidings.templates.plain`). Templates use only
what SendGrid's Handlebars can say as well (:mod:`tidings.templates.handlebars`): ``{{ field }}``,
``{{ a.b }}``, ``{% for x in list %}`` and ``{% if field %}``/``{% else %}``, no filters; values come
formatted by the shop (amounts, dates in the customer's locale).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from tidings.notifications.models import LOCALE_PATTERN, TEMPLATE_ID_PATTERN
from tidings.templates.errors import TemplateDataInvalid, TemplateNotFound, TemplateProblem
from tidings.templates.fields import FieldSpec, fields_model
from tidings.templates.plain import html_to_text

CATALOG_DIR = Path(__file__).parent / "catalog"
TEMPLATE_ID = re.compile(TEMPLATE_ID_PATTERN)
LOCALE = re.compile(LOCALE_PATTERN)
#: A SendGrid dynamic template id.
SENDGRID_TEMPLATE_ID = re.compile(r"^d-[0-9a-f]{32}$")
PARTS = ("subject.txt", "body.html", "sms.txt")
__all__ = ["TemplateCatalog", "TemplateDataInvalid", "TemplateNotFound", "TemplateProblem", "get_catalog"]


class LocaleVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sendgrid_template_id: str | None = Field(default=None, pattern=SENDGRID_TEMPLATE_ID.pattern)


class TemplateSpec(BaseModel):
    """``template.json``."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    default_locale: str = Field(pattern=LOCALE.pattern)
    fields: dict[str, FieldSpec]
    locales: dict[str, LocaleVariant]
    example: dict[str, JsonValue]


@dataclass(frozen=True)
class RenderedEmail:
    locale: str
    subject: str
    html: str
    text: str
    #: The SendGrid dynamic template this locale is published as (None: SendGrid gets the rendered content).
    sendgrid_template_id: str | None


@dataclass(frozen=True)
class RenderedSms:
    locale: str
    text: str


#: Jinja2's sandbox (no attribute access to Python internals, no mutation of the data); undefined names
#: are errors, not empty strings; block tags take their line with them, as Handlebars' standalone tags do.
_OPTIONS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
}


class Template:
    """One catalogue template: its spec, its locales' sources and the model its data must fit."""

    def __init__(self, template_id: str, directory: Path) -> None:
        self.template_id = template_id
        self.directory = directory
        self.spec = TemplateSpec.model_validate_json((directory / "template.json").read_text("utf-8"))
        if self.spec.default_locale not in self.spec.locales:
            raise ValueError(f"template {template_id}: default locale has no variant")

    @cached_property
    def data_model(self) -> type[BaseModel]:
        return fields_model(f"TemplateData_{self.template_id}", self.spec.fields)

    def resolve_locale(self, wanted: str | None) -> str:
        """The variant for ``wanted``: itself, its language, else the template's default."""
        for candidate in (wanted, wanted.split("-")[0].lower()) if wanted else ():
            for locale in self.spec.locales:
                if locale.lower() == candidate.lower():
                    return locale
        return self.spec.default_locale

    def has_sms(self, locale: str) -> bool:
        return (self.directory / locale / "sms.txt").is_file()

    def source(self, locale: str, part: str) -> str:
        return (self.directory / locale / part).read_text("utf-8")

    def check(self, data: dict[str, Any], loc: tuple[str | int, ...]) -> None:
        """``TemplateDataInvalid`` unless ``data`` fits the declared fields (locations, never values)."""
        try:
            self.data_model.model_validate(data)
        except ValidationError as error:
            errors = [
                {"loc": [*loc, *_safe_loc(item["loc"])], "type": item["type"], "message": item["msg"]}
                for item in error.errors()
            ]
            raise TemplateDataInvalid(
                f"dynamic_template_data does not fit template {self.template_id}", errors
            ) from None


class TemplateCatalog:
    """The templates under ``directory``, rendered in two sandboxed environments (HTML and text)."""

    def __init__(self, directory: Path = CATALOG_DIR) -> None:
        self.directory = directory
        self._html = ImmutableSandboxedEnvironment(autoescape=True, **_OPTIONS)
        self._text = ImmutableSandboxedEnvironment(autoescape=False, **_OPTIONS)
        self._templates: dict[str, Template] = {}

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if (p / "template.json").is_file())

    def get(self, template_id: str, loc: tuple[str | int, ...] = ("template_id",)) -> Template:
        if template_id not in self._templates:
            directory = self.directory / template_id
            if not TEMPLATE_ID.fullmatch(template_id) or not (directory / "template.json").is_file():
                raise TemplateNotFound(
                    "no such template",
                    [{"loc": list(loc), "type": "template_not_found", "message": "no such template"}],
                )
            self._templates[template_id] = Template(template_id, directory)
        return self._templates[template_id]

    # --- rendering --------------------------------------------------------------------------------
    def render_email(
        self, template_id: str, data: dict[str, Any], locale: str | None = None
    ) -> RenderedEmail:
        template = self.get(template_id)
        chosen = template.resolve_locale(locale)
        subject = " ".join(self._render(self._text, template, chosen, "subject.txt", data).split())
        html = self._render(self._html, template, chosen, "body.html", data)
        return RenderedEmail(
            locale=chosen,
            subject=subject,
            html=html,
            text=html_to_text(html),
            sendgrid_template_id=template.spec.locales[chosen].sendgrid_template_id,
        )

    def render_sms(self, template_id: str, data: dict[str, Any], locale: str | None = None) -> RenderedSms:
        template = self.get(template_id)
        chosen = template.resolve_locale(locale)
        text = self._render(self._text, template, chosen, "sms.txt", data).strip()
        return RenderedSms(locale=chosen, text=text)

    def check(
        self,
        template_id: str,
        data: dict[str, Any],
        locale: str | None,
        channel: str,
        loc: tuple[str | int, ...],
    ) -> None:
        """What the API asks before accepting a templated receipt or SMS: the template exists (with an
        SMS part, for an SMS), the data fits its fields, and it renders within the channel's limits."""
        template = self.get(template_id, (*loc, "template_id"))
        template.check(data, (*loc, "dynamic_template_data"))
        chosen = template.resolve_locale(locale)
        if channel == "sms":
            if not template.has_sms(chosen):
                raise TemplateNotFound(
                    "the template has no sms part",
                    [{"loc": [*loc, "template_id"], "type": "template_has_no_sms", "message": "no sms part"}],
                )
            if len(self.render_sms(template_id, data, locale).text) > 1600:
                raise TemplateDataInvalid(
                    "the rendered sms is longer than 1600 characters",
                    [{"loc": [*loc, "dynamic_template_data"], "type": "sms_too_long", "message": "too long"}],
                )
        else:
            try:
                self.render_email(template_id, data, locale)
            except TemplateDataInvalid as refused:
                refused.errors = [{**item, "loc": [*loc, *item["loc"]]} for item in refused.errors]
                raise

    def _render(self, env: Any, template: Template, locale: str, part: str, data: dict[str, Any]) -> str:
        compiled = _compiled(env, str(template.directory / locale / part), template.source(locale, part))
        try:
            # Through the fields model: an optional field left out is there, as None.
            fitted = template.data_model.model_validate(data).model_dump()
        except ValidationError:
            template.check(data, ())
            raise
        try:
            return str(compiled.render(**fitted))
        except TemplateError as error:
            # The template asked for something the data lacks: refused, without the template's message
            # (it may quote the data).
            raise TemplateDataInvalid(
                f"template {template.template_id} cannot be rendered with this data",
                [
                    {
                        "loc": ["dynamic_template_data"],
                        "type": type(error).__name__,
                        "message": "does not render",
                    }
                ],
            ) from None


@lru_cache(maxsize=64)
def _compiled(env: Any, _path: str, source: str) -> Any:
    return env.from_string(source)


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def _safe_loc(loc: tuple[Any, ...]) -> list[str | int]:
    """A location with any key that is not field-shaped (it is the shop's own data) replaced."""
    return [
        part if isinstance(part, int) or (isinstance(part, str) and _KEY.match(part)) else "<key>"
        for part in loc
    ]


@lru_cache(maxsize=1)
def get_catalog() -> TemplateCatalog:
    """The layer's catalogue, read once per container (each template on first use)."""
    return TemplateCatalog()


def example_data(template: Template) -> dict[str, Any]:
    """A fresh copy of the template's example data (the tests and the local system's demo use it)."""
    copied: dict[str, Any] = json.loads(json.dumps(template.spec.example))
    return copied
