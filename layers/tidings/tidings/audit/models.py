"""One audit record: who did what to which notification (or queue, suppression, secret), when, and how it
ended.

Nothing personal goes in: every text field is a short identifier (``SafeText``: no ``@``, no ``+``, no
spaces except in a route key), so an e-mail address, a phone number, a name or a receipt cannot be
stored even by mistake; ``details`` holds counts, flags and identifiers only. A JWT subject that is not
identifier-shaped (an IdP that uses e-mail addresses as subjects) is stored as ``sha256:<hex>`` of it
(``subject_key``), and queried the same way.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Identifier-shaped text: letters, digits and ``. _ : # / = -`` (no ``@``, no ``+``, no spaces).
IDENTIFIER = r"^[A-Za-z0-9._:#/=-]{1,200}$"
SafeText = Annotated[str, StringConstraints(pattern=IDENTIFIER)]
#: A route key as API Gateway names it: ``POST /notifications/{notification_id}``.
RouteKey = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3,7} /[A-Za-z0-9_./{}-]{0,200}$")]
DetailValue = int | bool | SafeText

Actor = Literal["client", "operator", "system"]
TargetKind = Literal["notification", "bulk", "queue", "suppression", "secret", "execution", "configuration"]

_IDENTIFIER = re.compile(IDENTIFIER)


def subject_key(subject: str) -> str:
    """The subject as the audit log stores it: itself when identifier-shaped, else ``sha256:<hex>``."""
    if _IDENTIFIER.match(subject) and not subject.startswith("sha256:"):
        return subject
    return "sha256:" + hashlib.sha256(subject.encode()).hexdigest()


class AuditEntry(BaseModel):
    """What a caller asks the audit log to record (the log adds the id and the time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: SafeText
    actor: Actor
    #: ``notifications.create``, ``bulk.create``, ``dlq.redrive``, ``suppression.add``, ``rotation.setSecret``
    action: SafeText
    outcome: Literal["ok", "refused", "failed"]
    #: The HTTP status answered (client and ops routes), or None outside HTTP.
    status: int | None = None
    #: The machine-readable error code of a refusal (``quota_exceeded``, ``not_found``...).
    code: SafeText | None = None
    route: RouteKey | None = None
    scopes: list[SafeText] = Field(default_factory=list)
    target_kind: TargetKind | None = None
    target_id: SafeText | None = None
    request_id: SafeText | None = None
    details: dict[SafeText, DetailValue] = Field(default_factory=dict)


class AuditRecord(AuditEntry):
    """A stored entry: its id and the time it was written (ISO 8601, UTC, microseconds)."""

    audit_id: str
    at: str
