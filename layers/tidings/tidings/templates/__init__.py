"""Receipt and SMS templates: the catalogue in the layer, its sandboxed rendering, its SendGrid form."""

from tidings.templates.catalog import (
    RenderedEmail,
    RenderedSms,
    TemplateCatalog,
    TemplateDataInvalid,
    TemplateNotFound,
    TemplateProblem,
    get_catalog,
)

__all__ = [
    "RenderedEmail",
    "RenderedSms",
    "TemplateCatalog",
    "TemplateDataInvalid",
    "TemplateNotFound",
    "TemplateProblem",
    "get_catalog",
]
