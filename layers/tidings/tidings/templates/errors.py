"""Why a template cannot be used for a request (the API answers 422 with ``code`` and ``errors``).

Kept apart from the catalogue so the API can name them without importing Jinja2.
"""

from __future__ import annotations

from typing import Any


class TemplateProblem(Exception):
    """A template cannot be used for this request: ``code`` and ``errors`` say why (no values)."""

    code = "template_invalid"

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class TemplateNotFound(TemplateProblem):
    code = "template_not_found"


class TemplateDataInvalid(TemplateProblem):
    code = "template_data_invalid"
