"""Receipt and SMS templates: the catalogue in the layer (``tidings.templates.catalog``), its sandboxed
rendering, and its SendGrid form (``tidings.templates.handlebars``). Importing this package loads no
template engine: the API names the errors without Jinja2."""

from tidings.templates.errors import TemplateDataInvalid, TemplateNotFound, TemplateProblem

__all__ = ["TemplateDataInvalid", "TemplateNotFound", "TemplateProblem"]
