"""A catalogue template in SendGrid's form: the same source compiled to Handlebars.

SendGrid renders a dynamic template with Handlebars; Tidings renders the same file with Jinja2 for SES
and SMS. The catalogue's templates keep to what both say alike, and this compiles it:

=================================  =====================================
Jinja2 (the catalogue)             Handlebars (the SendGrid version)
=================================  =====================================
``{{ a }}``, ``{{ a.b }}``          ``{{a}}``, ``{{a.b}}`` (both escape HTML)
``{% for x in xs %}`` ... ``x.f``  ``{{#each xs}}`` ... ``{{this.f}}``, an outer name as ``{{@root.a}}``
``{% if a %}``/``{% else %}``      ``{{#if a}}``/``{{else}}``/``{{/if}}``
``{% if not a %}``                 ``{{#unless a}}``
=================================  =====================================

Anything else (filters, expressions, calls, macros, nested loops over the loop variable) is refused
with ``NotPortable``: a template that compiles renders the same receipt through SendGrid and SES.
In a text part (the subject) values are not escaped: ``{{{a}}}``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class NotPortable(ValueError):
    """The template uses Jinja2 that SendGrid's Handlebars cannot say the same way."""


def to_handlebars(source: str, *, escape: bool = True) -> str:
    """``source`` (catalogue Jinja2) as Handlebars; ``escape`` False for a text part."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    tree = env.parse(source)
    return "".join(_Compiler(escape).nodes(tree.body, loop=None))


class _Compiler:
    def __init__(self, escape: bool) -> None:
        self.escape = escape

    def nodes(self, body: list[Any], loop: str | None) -> list[str]:
        out: list[str] = []
        for node in body:
            out += self.node(node, loop)
        return out

    def node(self, node: Any, loop: str | None) -> list[str]:
        if isinstance(node, nodes.Output):
            return [self.output(child, loop) for child in node.nodes]
        if isinstance(node, nodes.For):
            if loop is not None or node.else_ or node.test is not None or node.recursive:
                raise NotPortable("only a plain, unnested for loop compiles")
            if not isinstance(node.target, nodes.Name):
                raise NotPortable("a for loop takes one name")
            head = f"{{{{#each {self.path(node.iter, None)}}}}}"
            return [head, *self.nodes(node.body, node.target.name), "{{/each}}"]
        if isinstance(node, nodes.If):
            if node.elif_:
                raise NotPortable("elif does not compile: nest an if")
            test, helper = node.test, "if"
            if isinstance(test, nodes.Not):
                test, helper = test.node, "unless"
            out = [f"{{{{#{helper} {self.path(test, loop)}}}}}", *self.nodes(node.body, loop)]
            if node.else_:
                out += ["{{else}}", *self.nodes(node.else_, loop)]
            return [*out, f"{{{{/{helper}}}}}"]
        raise NotPortable(f"{type(node).__name__} does not compile")

    def output(self, node: Any, loop: str | None) -> str:
        if isinstance(node, nodes.TemplateData):
            if "{{" in node.data or "}}" in node.data:
                raise NotPortable("literal braces do not compile")
            return str(node.data)
        path = self.path(node, loop)
        return f"{{{{{path}}}}}" if self.escape else f"{{{{{{{path}}}}}}}"

    def path(self, node: Any, loop: str | None) -> str:
        parts: list[str] = []
        while isinstance(node, nodes.Getattr):
            parts.insert(0, node.attr)
            node = node.node
        if not isinstance(node, nodes.Name):
            raise NotPortable(f"{type(node).__name__} does not compile: names and a.b only")
        if loop is not None and node.name == loop:
            return ".".join(["this", *parts])
        head = f"@root.{node.name}" if loop is not None else node.name
        return ".".join([head, *parts])


def sendgrid_versions(catalog: Any) -> dict[str, dict[str, Any]]:
    """Every catalogue variant that names a SendGrid template, as that template's name and the version
    to create (``POST /v3/templates/{id}/versions``): compiled subject and HTML, SendGrid deriving the
    plain text from the HTML as Tidings does."""
    published: dict[str, dict[str, Any]] = {}
    for template_id in catalog.ids():
        template = catalog.get(template_id)
        for locale, variant in template.spec.locales.items():
            if variant.sendgrid_template_id is None:
                continue
            version = {
                "name": f"tidings {template_id} {locale}",
                "subject": to_handlebars(template.source(locale, "subject.txt").strip(), escape=False),
                "html_content": to_handlebars(template.source(locale, "body.html")),
                "generate_plain_content": True,
                "active": 1,
                "editor": "code",
            }
            published[variant.sendgrid_template_id] = {"name": version["name"], "versions": [version]}
    return published
