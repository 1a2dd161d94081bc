"""One audit record per client call of the notify API, built from the event and the answer given.

Only identifiers reach the record: the subject (``subject_key``), the scopes the token carried, the route
key, the notification or bulk id (from the path, or from the answer of a send), the outcome, the answer's
error ``code``, the request id, and for a bulk request its counts. Never the body.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from tidings.audit.models import IDENTIFIER, AuditEntry, subject_key

#: What each route does, as the audit log names it.
ACTIONS = {
    "POST /notifications": "notifications.create",
    "GET /notifications": "notifications.list",
    "GET /notifications/{notification_id}": "notifications.get",
    "GET /notifications/{notification_id}/timeline": "notifications.timeline",
    "POST /notifications/{notification_id}/refund": "notifications.refund",
    "POST /notifications/{notification_id}/cancel": "notifications.cancel",
    "POST /notifications/bulk": "bulk.create",
    "GET /notifications/bulk/{bulk_id}": "bulk.get",
    "GET /audit": "audit.query",
}
#: Routes that read or change no one's data: not audited.
UNAUDITED = frozenset({"GET /openapi.json", "GET /swagger"})

_IDENTIFIER = re.compile(IDENTIFIER)
_ROUTE = re.compile(r"^[A-Z]{3,7} /[A-Za-z0-9_./{}-]{0,200}$")


def _identifier(value: Any) -> str | None:
    return value if isinstance(value, str) and _IDENTIFIER.match(value) else None


def call_entry(event: dict[str, Any], response: dict[str, Any], request_id: str | None) -> AuditEntry | None:
    """The record of one call, or None for a call without a subject or on an unaudited route."""
    context = event.get("requestContext") or {}
    route = str(context.get("routeKey") or event.get("routeKey") or "")
    if route in UNAUDITED:
        return None
    jwt = (context.get("authorizer") or {}).get("jwt") or {}
    claims = jwt.get("claims") or {}
    subject = claims.get("sub")
    if not subject:
        return None
    scopes = jwt.get("scopes") or str(claims.get("scope") or claims.get("scp") or "").split()
    status = int(response.get("statusCode") or 500)
    body = _body(response)
    params = event.get("pathParameters") or {}
    target_kind: Literal["notification", "bulk"] | None = None
    target_id = None
    for kind in ("notification", "bulk"):
        candidate = _identifier(params.get(f"{kind}_id") or body.get(f"{kind}_id"))
        if candidate:
            target_kind, target_id = kind, candidate
            break
    details: dict[str, int | bool | str] = {
        key: body[key] for key in ("accepted", "rejected") if isinstance(body.get(key), int)
    }
    refund = body.get("refund")
    if isinstance(refund, dict) and isinstance(refund.get("amount"), int):
        details["refund_amount"] = refund["amount"]
    status_now = (
        _identifier(body.get("status")) if ACTIONS.get(route, "").endswith(("refund", "cancel")) else None
    )
    if status_now:
        details["status"] = status_now
    return AuditEntry(
        subject=subject_key(str(subject)),
        actor="client",
        action=ACTIONS.get(route, "api.call"),
        outcome="ok" if status < 400 else "refused" if status < 500 else "failed",
        status=status,
        code=_identifier(body.get("code")) if status >= 400 else None,
        route=route if _ROUTE.match(route) else None,
        scopes=[scope for scope in scopes if _identifier(scope)],
        target_kind=target_kind,
        target_id=target_id,
        request_id=_identifier(request_id),
        details=details,
    )


def _body(response: dict[str, Any]) -> dict[str, Any]:
    raw = response.get("body")
    if not raw or response.get("isBase64Encoded"):
        return {}
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
