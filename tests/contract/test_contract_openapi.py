"""Tidings' own API: the committed snapshot of /openapi.json, and the check that a change cannot break an
existing client unless the API version is raised and the change is in docs/api-changelog.md.
"""

from __future__ import annotations

import copy
import json

import pytest

from tidings_local import openapi

pytestmark = [pytest.mark.unit, pytest.mark.contract]


@pytest.fixture(scope="module")
def current() -> dict:
    return openapi.current_document()


@pytest.fixture(scope="module")
def snapshot() -> dict:
    return json.loads(openapi.SNAPSHOT.read_text())


def test_the_snapshot_is_the_document_the_api_serves(current, snapshot):
    # A change that breaks a client needs a raised version and a changelog entry...
    assert openapi.problems(snapshot, current, openapi.CHANGELOG.read_text()) == []
    # ...and any change at all needs the snapshot refreshed: `make openapi` (docs/api.md)
    assert current == snapshot, "docs/openapi.json is out of date: run `make openapi`"


def test_the_snapshot_version_has_a_changelog_section(snapshot):
    assert openapi.changelog_section(openapi.CHANGELOG.read_text(), snapshot["info"]["version"]) is not None


def changed(document: dict, edit) -> dict:
    copied = copy.deepcopy(document)
    edit(copied)
    return copied


def schemas(document: dict) -> dict:
    return document["components"]["schemas"]


def test_a_removed_response_field_breaks_a_client(snapshot):
    def remove_status_url(doc):
        del schemas(doc)["Accepted"]["properties"]["status_url"]
        schemas(doc)["Accepted"]["required"].remove("status_url")

    new = changed(snapshot, remove_status_url)
    changes = openapi.breaking_changes(snapshot, new)
    assert "POST /notifications 202 response.status_url: response property removed" in changes
    assert openapi.problems(snapshot, new, openapi.CHANGELOG.read_text())


def test_an_added_optional_field_does_not(snapshot):
    def add_optional(doc):
        schemas(doc)["Accepted"]["properties"]["links"] = {"type": "object", "title": "Links"}
        schemas(doc)["Payment"]["properties"]["statement_descriptor"] = {"type": "string", "maxLength": 22}

    new = changed(snapshot, add_optional)
    assert openapi.breaking_changes(snapshot, new) == []
    assert openapi.problems(snapshot, new, "") == []


def test_an_added_path_does_not(snapshot):
    def add_path(doc):
        doc["paths"]["/notifications/{notification_id}/resend"] = {
            "post": {"responses": {"202": {"description": "Accepted"}}}
        }

    assert openapi.breaking_changes(snapshot, changed(snapshot, add_path)) == []


@pytest.mark.parametrize(
    ("why", "edit", "expected"),
    [
        (
            "a removed path",
            lambda doc: doc["paths"].pop("/notifications/bulk"),
            "POST /notifications/bulk: operation removed",
        ),
        (
            "a new required request field",
            lambda doc: (
                schemas(doc)["Payment"]["required"].append("statement_descriptor")
                or schemas(doc)["Payment"]["properties"].update(statement_descriptor={"type": "string"})
            ),
            "POST /notifications request.payment.statement_descriptor: request property now required",
        ),
        (
            "a narrowed request type",
            lambda doc: schemas(doc)["Payment"]["properties"]["currency"].update(maxLength=2),
            "POST /notifications request.payment.currency: maxLength tightened to 2",
        ),
        (
            "a changed response type",
            lambda doc: schemas(doc)["Accepted"]["properties"]["status"].update(type="integer"),
            "POST /notifications 202 response.status: type changed from ['string'] to ['integer']",
        ),
        (
            "a removed response status",
            lambda doc: doc["paths"]["/notifications"]["post"]["responses"].pop("202"),
            "POST /notifications 202: response status removed",
        ),
        (
            "a new required header",
            lambda doc: doc["paths"]["/notifications"]["post"]["parameters"][0].update(required=True),
            "POST /notifications header parameter idempotency-key: parameter now required",
        ),
    ],
)
def test_changes_that_break_a_client(snapshot, why, edit, expected):
    changes = openapi.breaking_changes(snapshot, changed(snapshot, edit))
    assert expected in changes, changes


def test_a_removed_enum_value_breaks_a_client(snapshot):
    enums = {name: s["enum"] for name, s in schemas(snapshot).items() if "enum" in s}
    name, values = next(iter(sorted(enums.items())))
    new = changed(snapshot, lambda doc: schemas(doc)[name]["enum"].remove(values[-1]))
    changes = openapi.breaking_changes(snapshot, new)
    assert any(f"enum values removed: ['\"{values[-1]}\"']" in c for c in changes), changes


def test_a_breaking_change_passes_with_a_raised_version_and_a_changelog_entry(snapshot):
    current = snapshot["info"]["version"]
    bumped = f"{int(current.split('.')[0]) + 1}.0.0"

    def remove_and_bump(doc):
        doc["paths"].pop("/notifications/bulk")
        doc["info"]["version"] = bumped

    new = changed(snapshot, remove_and_bump)
    assert openapi.problems(snapshot, new, f"## {current}\n\nFirst.\n") != []  # version raised, no entry
    entry = f"## {bumped}\n\n- Removed `POST /notifications/bulk`: send one request per notification.\n"
    assert openapi.problems(snapshot, new, entry) == []
    # an entry that does not name the changed path is not enough
    assert openapi.problems(snapshot, new, f"## {bumped}\n\n- Various changes.\n") != []
    # nor is a changelog entry without the version raised
    unbumped = changed(snapshot, lambda doc: doc["paths"].pop("/notifications/bulk"))
    assert openapi.problems(snapshot, unbumped, entry.replace(bumped, current)) != []
