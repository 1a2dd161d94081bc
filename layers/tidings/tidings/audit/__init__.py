"""The audit log: one append-only record per client call, operator action and rotation step.

Write with ``get_audit_log().record(AuditEntry(...))`` (or ``record_quietly`` once the action is
done); read with ``by_subject`` and ``by_target``. See docs/audit.md.
"""

from tidings.audit.log import AuditLog, AuditUnavailable, audit_log_for, get_audit_log
from tidings.audit.models import AuditEntry, AuditRecord, subject_key

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "AuditUnavailable",
    "audit_log_for",
    "get_audit_log",
    "subject_key",
]
