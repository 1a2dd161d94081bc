"""Receipt and SMS templates: the catalogue, its sandboxed rendering, locales, fields and SendGrid form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from tidings.templates import TemplateDataInvalid, TemplateNotFound
from tidings.templates.catalog import TemplateCatalog, example_data, get_catalog
from tidings.templates.handlebars import NotPortable, sendgrid_versions, to_handlebars
from tidings.templates.plain import html_to_text
from tidings_local.sandboxes import handlebars as sendgrid_handlebars

pytestmark = pytest.mark.unit


def _catalog(
    tmp_path: Path, body: str, fields: dict | None = None, sms: str | None = None
) -> TemplateCatalog:
    directory = tmp_path / "t" / "en"
    directory.mkdir(parents=True)
    spec = {
        "default_locale": "en",
        "fields": fields or {"name": {"type": "string"}},
        "locales": {"en": {}},
        "example": {"name": "Ada"},
    }
    (tmp_path / "t" / "template.json").write_text(json.dumps(spec))
    (directory / "subject.txt").write_text("Hi {{ name }}\n")
    (directory / "body.html").write_text(body)
    if sms is not None:
        (directory / "sms.txt").write_text(sms)
    return TemplateCatalog(tmp_path)


@pytest.mark.parametrize("template_id", get_catalog().ids())
def test_every_catalogue_template_renders_its_example_in_every_locale_and_compiles_for_sendgrid(template_id):
    # Given a catalogue template and its example data
    catalog = get_catalog()
    template = catalog.get(template_id)
    data = example_data(template)
    for locale in template.spec.locales:
        # When it is rendered, and its SendGrid form rendered the way SendGrid does
        ours = catalog.render_email(template_id, data, locale)
        theirs_html = sendgrid_handlebars.render(to_handlebars(template.source(locale, "body.html")), data)
        theirs_subject = sendgrid_handlebars.render(
            to_handlebars(template.source(locale, "subject.txt").strip(), escape=False), data
        )
        # Then both say the same, and the text part is the HTML's words without markup
        assert (ours.subject, ours.html) == (theirs_subject, theirs_html)
        assert "<" not in ours.text
        assert ours.text
        if template.has_sms(locale):
            assert catalog.render_sms(template_id, data, locale).text


def test_the_order_receipt_speaks_english_and_french_and_falls_back_to_the_default_locale():
    catalog = get_catalog()
    data = example_data(catalog.get("order_receipt"))
    assert catalog.render_email("order_receipt", data, "en").subject == "Your receipt for order-1001"
    french = catalog.render_email("order_receipt", data, "fr-CA")
    assert (french.locale, french.subject) == ("fr", "Votre reçu pour la commande order-1001")
    assert "Merci pour votre commande order-1001." in french.text
    assert catalog.render_email("order_receipt", data, "de-AT").locale == "en"
    assert catalog.render_email("order_receipt", data, None).locale == "en"
    assert catalog.render_sms("order_receipt", data, "FR").text.startswith("Commande order-1001 payée")
    # each locale has its own SendGrid template
    assert (
        french.sendgrid_template_id != catalog.render_email("order_receipt", data, "en").sendgrid_template_id
    )


def test_data_is_escaped_in_html_and_not_in_text():
    catalog = get_catalog()
    data = example_data(catalog.get("order_receipt")) | {"customer_name": '<img src=x onerror="alert(1)">'}
    rendered = catalog.render_email("order_receipt", data, "en")
    assert "<img" not in rendered.html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in rendered.html
    assert '<img src=x onerror="alert(1)">' in rendered.text  # the text part is text: nothing to escape
    assert catalog.render_sms("order_receipt", data).text.count("<img") == 1


def test_an_optional_field_may_be_left_out():
    catalog = get_catalog()
    data = example_data(catalog.get("order_receipt"))
    del data["note"]
    assert "note" not in catalog.render_email("order_receipt", data).text.lower()


def test_data_that_does_not_fit_is_refused_with_locations_and_types_never_values():
    catalog = get_catalog()
    data = example_data(catalog.get("order_receipt"))
    bad = {
        **data,
        "customer_name": 7,
        "items": [{"name": "Tea", "quantity": "2", "price": "£1"}],
        "ada@example.com": "secret",
    }
    del bad["total"]
    with pytest.raises(TemplateDataInvalid) as refused:
        catalog.check("order_receipt", bad, "en", "email", ("body", "receipt"))
    errors = refused.value.errors
    where = {tuple(e["loc"]): e["type"] for e in errors}
    prefix = ("body", "receipt", "dynamic_template_data")
    assert where == {
        (*prefix, "customer_name"): "string_type",
        (*prefix, "total"): "missing",
        (*prefix, "items", 0, "quantity"): "int_type",
        (*prefix, "<key>"): "extra_forbidden",
    }
    assert "secret" not in json.dumps(errors)
    assert "ada@example.com" not in json.dumps(errors)
    assert refused.value.code == "template_data_invalid"


def test_control_characters_in_data_are_refused_like_in_a_raw_receipt():
    catalog = get_catalog()
    data = example_data(catalog.get("order_receipt")) | {"customer_name": "Ada\u202eevil"}
    with pytest.raises(TemplateDataInvalid) as refused:
        catalog.check("order_receipt", data, None, "email", ("body", "receipt"))
    assert refused.value.errors[0]["type"] == "unsafe_character"


@pytest.mark.parametrize("template_id", ["no_such_template", "../secrets", "Order_Receipt", ""])
def test_a_missing_template_is_refused(template_id):
    with pytest.raises(TemplateNotFound) as refused:
        get_catalog().check(template_id, {}, None, "email", ("body", "receipt"))
    assert refused.value.errors == [
        {
            "loc": ["body", "receipt", "template_id"],
            "type": "template_not_found",
            "message": "no such template",
        }
    ]


def test_an_sms_needs_a_template_with_an_sms_part_and_a_text_that_fits(tmp_path):
    catalog = _catalog(tmp_path, "<p>{{ name }}</p>")
    with pytest.raises(TemplateNotFound) as refused:
        catalog.check("t", {"name": "Ada"}, None, "sms", ("body", "sms"))
    assert refused.value.errors[0]["type"] == "template_has_no_sms"
    long = _catalog(
        tmp_path / "long", "<p>x</p>", {"name": {"type": "string", "max_length": 2000}}, "{{ name }}"
    )
    with pytest.raises(TemplateDataInvalid) as too_long:
        long.check("t", {"name": "x" * 1601}, None, "sms", ("body", "sms"))
    assert too_long.value.errors[0]["type"] == "sms_too_long"


def test_the_sandbox_keeps_a_template_away_from_python_internals(tmp_path):
    catalog = _catalog(tmp_path, "{{ name.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateDataInvalid) as refused:
        catalog.render_email("t", {"name": "Ada"})
    assert refused.value.errors[0]["type"] == SecurityError.__name__


def test_a_template_that_asks_for_an_undeclared_field_does_not_render_silently(tmp_path):
    catalog = _catalog(tmp_path, "<p>{{ missing }}</p>")
    with pytest.raises(TemplateDataInvalid) as refused:
        catalog.check("t", {"name": "Ada"}, None, "email", ("body", "receipt"))
    assert refused.value.errors[0]["loc"] == ["body", "receipt", "dynamic_template_data"]


@pytest.mark.parametrize(
    "source",
    [
        "{{ name | upper }}",
        "{{ name ~ 'x' }}",
        "{% for a in items %}{% for b in a.parts %}{% endfor %}{% endfor %}",
        "{% if a %}x{% elif b %}y{% endif %}",
        "{% macro m() %}{% endmacro %}",
        "{% raw %}{{ x }}{% endraw %}",
    ],
)
def test_jinja_that_handlebars_cannot_say_the_same_way_does_not_compile(source):
    with pytest.raises(NotPortable):
        to_handlebars(source)


def test_loops_conditions_and_outer_names_compile_to_handlebars():
    source = (
        "{% for i in items %}{{ i.n }} {{ unit }}{% endfor %}{% if not x %}none{% else %}{{ x }}{% endif %}"
    )
    assert to_handlebars(source) == (
        "{{#each items}}{{this.n}} {{@root.unit}}{{/each}}{{#unless x}}none{{else}}{{x}}{{/unless}}"
    )
    assert to_handlebars("Hi {{ name }}", escape=False) == "Hi {{{name}}}"


def test_the_published_versions_name_each_locales_sendgrid_template():
    published = sendgrid_versions(get_catalog())
    template = get_catalog().get("order_receipt")
    ids = {variant.sendgrid_template_id for variant in template.spec.locales.values()}
    assert ids <= set(published)
    version = published[template.spec.locales["fr"].sendgrid_template_id or ""]["versions"][0]
    assert version["generate_plain_content"] is True
    assert version["active"] == 1
    assert version["subject"] == "Votre reçu pour la commande {{{order_reference}}}"


def test_plain_text_from_html_keeps_blocks_links_and_cells_and_drops_style():
    html = (
        "<html><head><style>p{}</style></head><body><h1>Receipt</h1><p>Hello &amp; welcome<br>line 2</p>"
        '<table><tr><td>Tea</td><td>£1</td></tr></table><ul><li>one</li></ul><a href="https://x.example/r">'
        "see</a></body></html>"
    )
    assert (
        html_to_text(html)
        == "Receipt\n\nHello & welcome\nline 2\n\nTea\t£1\n\n- one\n\nsee (https://x.example/r)"
    )
