"""Suppression changes in the audit log: the ``SuppressionAudit`` the suppression service calls.

One record per change that took effect (``suppression.added`` / ``suppression.removed``), by the
suppression's id, never its address; the actor (a JWT subject, an operator) through ``subject_key``,
a change without one (a provider's opt-out signal) as ``system:<source>``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tidings.audit.models import IDENTIFIER, AuditEntry, subject_key
from tidings.observability import logger

if TYPE_CHECKING:
    from tidings.audit.log import AuditLog
    from tidings.suppressions.models import SuppressionChange

_IDENTIFIER = re.compile(IDENTIFIER)


class AuditedSuppressionChanges:
    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def record(self, change: SuppressionChange) -> None:
        try:
            source = str(change.source)
            details: dict[str, int | bool | str] = {
                key: value
                for key, value in {
                    "channel": str(change.channel),
                    "reason": str(getattr(change.reason, "value", change.reason)),
                    "source": source,
                }.items()
                if _IDENTIFIER.match(value)
            }
            entry = AuditEntry(
                subject=subject_key(change.actor) if change.actor else subject_key(f"system:{source}"),
                actor="operator" if change.actor else "system",
                action=f"suppression.{change.action}",
                outcome="ok",
                target_kind="suppression",
                target_id=change.suppression_id if _IDENTIFIER.match(change.suppression_id) else None,
                details=details,
            )
        except ValueError as exc:  # never let the audit undo a change that took effect
            logger.error("audit record not built", action="suppression", error=type(exc).__name__)
            return
        self.log.record_quietly(entry)
