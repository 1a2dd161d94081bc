"""Changing and reading the suppression list: the one place every change goes through.

The notify API's ``/suppressions`` routes, ``tidings suppressions`` and the webhook receiver's opt-out
signals all call :class:`SuppressionService`; each change that took effect is handed to
:meth:`SuppressionAudit.record` (the audit log's one call site for suppressions) and counted, without
the address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tidings.suppressions.models import (
    Suppression,
    SuppressionAction,
    SuppressionChange,
    SuppressionChannel,
    SuppressionPage,
    SuppressionReason,
    SuppressionRequest,
    SuppressionSource,
    SuppressionView,
    suppression_id,
)
from tidings.suppressions.store import SuppressionStore


class SuppressionNotFound(LookupError):
    """No entry by that id."""


class SuppressionAudit(Protocol):
    def record(self, change: SuppressionChange) -> None:
        """Keep one record of a change that took effect (added or removed)."""
        ...


class NoAudit:
    """Until the audit log exists: changes are counted and logged (without addresses) only."""

    def record(self, change: SuppressionChange) -> None:
        return None


def _count(change: SuppressionChange) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from tidings.observability import logger, metrics

    logger.info(
        f"suppression {change.action}",
        suppression_id=change.suppression_id,
        channel=change.channel,
        reason=change.reason.value,
        source=change.source,
    )
    name = "SuppressionAdded" if change.action == "added" else "SuppressionRemoved"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@dataclass
class SuppressionService:
    store: SuppressionStore
    audit: SuppressionAudit = field(default_factory=NoAudit)
    observe: Callable[[SuppressionChange], None] = _count

    # --- reads ----------------------------------------------------------------------------------
    def find(self, channel: SuppressionChannel, address: str) -> Suppression | None:
        """The entry suppressing this address, or None (also None for a value that is no address)."""
        try:
            return self.store.get(channel, address)
        except ValueError:
            return None

    def list(
        self, channel: SuppressionChannel | None = None, limit: int = 50, cursor: str | None = None
    ) -> SuppressionPage:
        entries, next_cursor = self.store.list(channel, limit, cursor)
        return SuppressionPage(
            items=[SuppressionView.of(entry) for entry in entries], next_cursor=next_cursor
        )

    # --- changes --------------------------------------------------------------------------------
    def add(self, request: SuppressionRequest, actor: str) -> tuple[SuppressionView, bool]:
        """An operator suppresses an address; (the entry, whether it is new)."""
        entry = Suppression.of(
            request.channel,
            request.address,
            SuppressionReason.OPERATOR,
            "operator",
            at=self.store.now(),
            added_by=actor,
            note=request.note,
        )
        kept, created = self.store.add(entry)
        if created:
            self._changed("added", kept, actor)
        return SuppressionView.of(kept), created

    def remove(self, entry_id: str, actor: str | None) -> SuppressionView:
        """Lift a suppression (an operator, or the recipient opting back in)."""
        removed = self.store.remove(entry_id)
        if removed is None:
            raise SuppressionNotFound(entry_id)
        self._changed("removed", removed, actor, source=removed.source if actor is None else "operator")
        return SuppressionView.of(removed)

    def suppress(
        self,
        channel: SuppressionChannel,
        address: str,
        reason: SuppressionReason,
        source: SuppressionSource,
    ) -> bool:
        """A provider's opt-out signal; True if the address was not suppressed before."""
        entry = Suppression.of(channel, address, reason, source, at=self.store.now())
        kept, created = self.store.add(entry)
        if created:
            self._changed("added", kept, None)
        return created

    def lift(self, channel: SuppressionChannel, address: str, source: SuppressionSource) -> bool:
        """The recipient opted back in at the provider (Twilio START): lifts only what that provider's
        own signals put there (an operator's or another provider's entry stays); True if one was lifted."""
        entry_id = suppression_id(channel, address)
        current = self.store.get_by_id(entry_id)
        if current is None or current.source != source:
            return False
        try:
            self.remove(entry_id, None)
        except SuppressionNotFound:
            return False
        return True

    def _changed(
        self,
        action: SuppressionAction,
        entry: Suppression,
        actor: str | None,
        source: SuppressionSource | None = None,
    ) -> None:
        change = SuppressionChange(
            action=action,
            suppression_id=entry.suppression_id,
            channel=entry.channel,
            reason=entry.reason,
            source=source or entry.source,
            actor=actor,
            at=self.store.now(),
        )
        self.observe(change)
        # The audit log's one call site for suppression changes.
        self.audit.record(change)


def audited(audit_table: str | None, retention_days: int = 400) -> SuppressionAudit:
    """The audit of suppression changes on ``audit_table`` (its table is touched on the first change), or
    none when there is no audit table configured."""
    if not audit_table:
        return NoAudit()
    from tidings.audit import audit_log_for
    from tidings.audit.suppressions import AuditedSuppressionChanges

    return AuditedSuppressionChanges(audit_log_for(audit_table, retention_days))


def get_suppression_service() -> SuppressionService:
    """The service on the real table (its store is built once per container), its changes audited."""
    from tidings.suppressions.settings import suppression_settings
    from tidings.suppressions.store import get_suppression_store

    settings = suppression_settings()
    return SuppressionService(
        get_suppression_store(), audit=audited(settings.audit_table, settings.audit_retention_days)
    )
