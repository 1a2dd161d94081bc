"""The notify API's OpenAPI document: the committed snapshot, and what counts as breaking a client.

    python -m tidings_local.openapi            # refresh docs/openapi.json (make openapi)
    python -m tidings_local.openapi --check    # only report; exit 1 on an unapproved breaking change

The document is what the Powertools resolver in ``tidings.api.http`` generates (the one served at
``GET /openapi.json``), with the default settings. A change *breaks an existing client* when a request
that worked may now be refused, or an answer a client understood may now surprise it:

* a path, method, documented response status or parameter removed;
* a new required parameter, request body or request property;
* a request property removed, its type narrowed, an enum value removed or a constraint tightened
  (shorter ``maxLength``, larger ``minLength``, a new or changed ``pattern``, a smaller ``maximum``...);
* a response property removed or no longer required, its type changed or an enum value removed.

A breaking change is accepted only with the API version (``info.version``) raised above the snapshot's
and a section for the new version in docs/api-changelog.md naming each changed path. Anything else
(an added path, an added optional field) only needs the snapshot refreshed. See docs/api.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "docs" / "openapi.json"
CHANGELOG = ROOT / "docs" / "api-changelog.md"
#: The settings the document is generated with: only the required ones (the deployed defaults).
SETTINGS = {
    "NOTIFICATIONS_TABLE": "notifications",
    "IDEMPOTENCY_TABLE": "idempotency",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:tidings-notification-saga",
    "AUDIT_TABLE": "audit",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_TIGHTER_WHEN_SMALLER = ("maxLength", "maxItems", "maximum", "exclusiveMaximum", "maxProperties")
_TIGHTER_WHEN_LARGER = ("minLength", "minItems", "minimum", "exclusiveMinimum", "minProperties")


def current_document() -> dict[str, Any]:
    """The document the notify API serves, generated from the code (no AWS is touched)."""
    from tidings.api.http import NotifyApi
    from tidings.api.settings import ApiSettings, load

    api = NotifyApi(load(ApiSettings, SETTINGS))
    return json.loads(api.openapi_json())


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# --- what breaks a client -----------------------------------------------------------------------------


class _Diff:
    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.old, self.new = old, new
        self.changes: list[str] = []

    def resolve(self, document: dict[str, Any], schema: Any, seen: frozenset[str]) -> tuple[Any, frozenset]:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in seen:
                return {}, seen  # a recursive schema: compared once
            seen = seen | {ref}
            target: Any = document
            for part in ref.removeprefix("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target
        return (schema if isinstance(schema, dict) else {}), seen

    def add(self, where: str, what: str) -> None:
        self.changes.append(f"{where}: {what}")

    # --- schemas ------------------------------------------------------------------------------------
    @staticmethod
    def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
        branches = schema.get("anyOf") or schema.get("oneOf")
        return [b for b in branches if isinstance(b, dict)] if branches else [schema]

    def _flatten(self, document: dict[str, Any], schema: dict[str, Any], seen: frozenset) -> dict[str, Any]:
        """One view of a schema over its anyOf/oneOf/allOf branches: types, enum, properties, required."""
        view: dict[str, Any] = {"types": set(), "enum": None, "properties": {}, "required": set()}
        view["items"] = None
        parts = [schema, *[b for b in schema.get("allOf", []) if isinstance(b, dict)]]
        for part in parts:
            for branch in self._branches(part):
                branch, branch_seen = self.resolve(document, branch, seen)
                if branch is not part and ("anyOf" in branch or "oneOf" in branch or "allOf" in branch):
                    nested = self._flatten(document, branch, branch_seen)
                    for key in ("types", "required"):
                        view[key] |= nested[key]
                    view["properties"].update(nested["properties"])
                    view["items"] = view["items"] or nested["items"]
                    if nested["enum"] is not None:
                        view["enum"] = (view["enum"] or set()) | nested["enum"]
                    continue
                kind = branch.get("type")
                kinds = kind if isinstance(kind, list) else [kind] if kind else []
                if not kinds and "properties" in branch:
                    kinds = ["object"]
                view["types"] |= set(kinds)
                if "enum" in branch:
                    view["enum"] = (view["enum"] or set()) | {json.dumps(v) for v in branch["enum"]}
                if "const" in branch:
                    view["enum"] = (view["enum"] or set()) | {json.dumps(branch["const"])}
                for name, prop in (branch.get("properties") or {}).items():
                    view["properties"][name] = (prop, branch_seen)
                view["required"] |= set(branch.get("required") or [])
                if "items" in branch:
                    view["items"] = (branch["items"], branch_seen)
                for key in (*_TIGHTER_WHEN_SMALLER, *_TIGHTER_WHEN_LARGER, "pattern", "format"):
                    if key in branch:
                        view.setdefault(key, branch[key])
        return view

    def schema(self, old: Any, new: Any, where: str, direction: str, seen=(frozenset(), frozenset())) -> None:
        old, old_seen = self.resolve(self.old, old, seen[0])
        new, new_seen = self.resolve(self.new, new, seen[1])
        if old == {} or new == {}:
            if old and not new and direction == "request":
                return  # anything is accepted now: wider, not narrower
            if new and not old and direction == "request":
                self.add(where, "the request value is constrained where it was not")
            return
        a, b = self._flatten(self.old, old, old_seen), self._flatten(self.new, new, new_seen)
        if a["types"] and b["types"]:
            if direction == "request" and a["types"] - b["types"]:
                self.add(where, f"type narrowed from {sorted(a['types'])} to {sorted(b['types'])}")
            if direction == "response" and b["types"] - a["types"]:
                self.add(where, f"type changed from {sorted(a['types'])} to {sorted(b['types'])}")
        if a["enum"] is not None and b["enum"] is not None and a["enum"] - b["enum"]:
            self.add(where, f"enum values removed: {sorted(a['enum'] - b['enum'])}")
        if direction == "request" and a["enum"] is None and b["enum"] is not None:
            self.add(where, "the request value is now restricted to an enum")
        if direction == "request":
            for key in _TIGHTER_WHEN_SMALLER:
                if key in b and (key not in a or b[key] < a[key]):
                    self.add(where, f"{key} tightened to {b[key]}")
            for key in _TIGHTER_WHEN_LARGER:
                if key in b and (key not in a or b[key] > a[key]):
                    self.add(where, f"{key} tightened to {b[key]}")
            for key in ("pattern", "format"):
                if key in b and b.get(key) != a.get(key):
                    self.add(where, f"{key} now {b[key]!r}")
        old_props, new_props = a["properties"], b["properties"]
        for name in sorted(old_props):
            if name not in new_props:
                self.add(f"{where}.{name}", f"{direction} property removed")
                continue
            (old_prop, s1), (new_prop, s2) = old_props[name], new_props[name]
            self.schema(old_prop, new_prop, f"{where}.{name}", direction, (s1, s2))
        if direction == "request":
            for name in sorted(b["required"] - a["required"]):
                self.add(f"{where}.{name}", "request property now required")
        else:
            for name in sorted(a["required"] - b["required"]):
                if name in new_props:
                    self.add(f"{where}.{name}", "response property no longer always present")
        if a["items"] and b["items"]:
            (old_items, s1), (new_items, s2) = a["items"], b["items"]
            self.schema(old_items, new_items, f"{where}[]", direction, (s1, s2))

    # --- operations ---------------------------------------------------------------------------------
    @staticmethod
    def _params(document: dict[str, Any], path_item: dict[str, Any], op: dict[str, Any]) -> dict:
        found = {}
        for param in [*path_item.get("parameters", []), *op.get("parameters", [])]:
            if isinstance(param, dict) and "name" in param:
                found[(param.get("in"), str(param["name"]).lower())] = param
        return found

    @staticmethod
    def _json_schema(holder: dict[str, Any] | None) -> Any:
        content = (holder or {}).get("content") or {}
        media = content.get("application/json") or next(iter(content.values()), {})
        return media.get("schema") if isinstance(media, dict) else None

    def operations(self) -> None:
        old_paths, new_paths = self.old.get("paths", {}), self.new.get("paths", {})
        for path, old_item in sorted(old_paths.items()):
            new_item = new_paths.get(path)
            for method in _METHODS:
                if method not in old_item:
                    continue
                where = f"{method.upper()} {path}"
                if new_item is None or method not in new_item:
                    self.add(where, "operation removed")
                    continue
                self.operation(where, old_item, old_item[method], new_item, new_item[method])

    def operation(self, where: str, old_item, old_op, new_item, new_op) -> None:
        old_params = self._params(self.old, old_item, old_op)
        new_params = self._params(self.new, new_item, new_op)
        for key, param in sorted(old_params.items()):
            name = f"{where} {key[0]} parameter {param['name']}"
            if key not in new_params:
                self.add(name, "parameter removed")
                continue
            if new_params[key].get("required") and not param.get("required"):
                self.add(name, "parameter now required")
            self.schema(param.get("schema"), new_params[key].get("schema"), name, "request")
        for key, param in sorted(new_params.items()):
            if key not in old_params and param.get("required"):
                self.add(f"{where} {key[0]} parameter {param['name']}", "new required parameter")
        old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
        if new_body and new_body.get("required") and not (old_body and old_body.get("required")):
            self.add(f"{where} request body", "now required")
        if old_body and new_body:
            old_schema, new_schema = self._json_schema(old_body), self._json_schema(new_body)
            self.schema(old_schema, new_schema, f"{where} request", "request")
        old_responses, new_responses = old_op.get("responses", {}), new_op.get("responses", {})
        for status, response in sorted(old_responses.items()):
            if status not in new_responses:
                self.add(f"{where} {status}", "response status removed")
                continue
            old_schema = self._json_schema(response)
            new_schema = self._json_schema(new_responses[status])
            if old_schema is not None:
                if new_schema is None:
                    self.add(f"{where} {status}", "response body no longer described")
                else:
                    self.schema(old_schema, new_schema, f"{where} {status} response", "response")


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every change from ``old`` to ``new`` that could break a client written against ``old``."""
    diff = _Diff(old, new)
    diff.operations()
    return diff.changes


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(text))[:3]) or (0,)


def changelog_section(changelog: str, version: str) -> str | None:
    """The text under ``## <version>`` (up to the next ``## ``), or None."""
    match = re.search(rf"^##\s+\[?v?{re.escape(version)}\]?\b.*?$(.*?)(?=^##\s|\Z)", changelog, re.M | re.S)
    return match.group(1) if match else None


def problems(snapshot: dict[str, Any], current: dict[str, Any], changelog: str) -> list[str]:
    """Why ``current`` may not replace ``snapshot``: its unapproved breaking changes (empty: it may)."""
    changes = breaking_changes(snapshot, current)
    if not changes:
        return []
    old_version = str(snapshot.get("info", {}).get("version", "0"))
    new_version = str(current.get("info", {}).get("version", "0"))
    found = []
    if _version(new_version) <= _version(old_version):
        found.append(f"the API version must be raised above {old_version} (it is {new_version})")
    section = changelog_section(changelog, new_version)
    if section is None:
        found.append(f"docs/api-changelog.md has no '## {new_version}' section listing the breaking changes")
    else:
        unlisted = sorted({c.split(":")[0].split(" request")[0] for c in changes})
        unlisted = [where for where in unlisted if _path_of(where) not in section]
        if unlisted:
            found.append(f"the '## {new_version}' changelog section does not name {unlisted}")
    return [*found, *(f"breaking: {c}" for c in changes)] if found else []


def _path_of(where: str) -> str:
    """``"GET /notifications/{id} 200 response.x"`` -> ``"GET /notifications/{id}"``."""
    parts = where.split(" ")
    return " ".join(parts[:2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tidings_local.openapi", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="report only; do not write the snapshot")
    args = parser.parse_args(argv)
    current = current_document()
    snapshot = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else None
    changelog = CHANGELOG.read_text() if CHANGELOG.exists() else ""
    found = problems(snapshot, current, changelog) if snapshot is not None else []
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(
            "docs/openapi.json not refreshed: raise the version, list the change (docs/api.md)",
            file=sys.stderr,
        )
        return 1
    if snapshot == current:
        print("docs/openapi.json is up to date")
        return 0
    if args.check:
        print("docs/openapi.json is out of date: run `make openapi`", file=sys.stderr)
        return 1
    SNAPSHOT.write_text(render(current))
    print(f"docs/openapi.json refreshed (version {current.get('info', {}).get('version')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
