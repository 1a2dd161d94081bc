"""The audit log: an append-only DynamoDB table (``AUDIT_TABLE``), queryable by subject and time and by
target (notification, bulk, queue, suppression, secret).

Key design, written here and nowhere else:

* ``pk`` = ``SUBJECT#<subject>``, ``sk`` = ``<at>#<audit id>``: a subject's records in time order, so
  "what did S do today" is one Query with ``sk BETWEEN``.
* ``target`` = ``<kind>#<id>`` (only when the record has a target), index ``ByTarget`` (``target``,
  ``sk``): "who did what to notification X" is one Query.
* ``expires_at``: the table's TTL attribute, ``AUDIT_RETENTION_DAYS`` after ``at``.

Append-only twice over: every put carries ``attribute_not_exists(pk)`` (a record is never overwritten,
not even by a retry that reused its key), and the functions that write are granted ``PutItem`` only, no
``UpdateItem`` or ``DeleteItem`` (template.yaml). A failed write raises ``AuditUnavailable``; callers
whose action already happened use ``record_quietly`` (logged, metric ``AuditWriteFailed``) so the
audit never turns a done action into an error answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from tidings.audit.models import AuditEntry, AuditRecord, TargetKind, subject_key
from tidings.observability import emit_metric, logger

BY_TARGET_INDEX = "ByTarget"
_FIELDS = tuple(AuditRecord.model_fields)


class AuditUnavailable(Exception):
    """The audit table could not be written or read."""


def _now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Appends records to one audit table and reads them back (``table`` builds a boto3 Table, or a fake)."""

    def __init__(
        self,
        table: Callable[[], Any],
        retention_days: int = 400,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._table_factory = table
        self.retention_days = retention_days
        self.clock = clock

    @cached_property
    def table(self) -> Any:
        """The boto3 Table (or a fake), built on the first read or write."""
        return self._table_factory()

    # --- writing ----------------------------------------------------------------------------------
    def record(self, entry: AuditEntry) -> AuditRecord:
        """Append one record; never overwrites (raises AuditUnavailable when it cannot be written)."""
        moment = self.clock()
        record = AuditRecord(**entry.model_dump(), audit_id=uuid.uuid4().hex, at=iso(moment))
        item: dict[str, Any] = {
            key: value for key, value in record.model_dump().items() if value not in (None, [], {})
        }
        item["pk"] = f"SUBJECT#{record.subject}"
        item["sk"] = f"{record.at}#{record.audit_id}"
        item["expires_at"] = int((moment + timedelta(days=self.retention_days)).timestamp())
        if record.target_kind and record.target_id:
            item["target"] = f"{record.target_kind}#{record.target_id}"
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            raise AuditUnavailable(type(exc).__name__) from exc
        return record

    def record_quietly(self, entry: AuditEntry) -> AuditRecord | None:
        """``record``, but a failure is logged and counted instead of raised (the action already happened)."""
        try:
            return self.record(entry)
        except AuditUnavailable as exc:
            logger.error("audit record not written", action=entry.action, error=str(exc))
            emit_metric("AuditWriteFailed", action=entry.action)
            return None

    # --- reading ----------------------------------------------------------------------------------
    def by_subject(
        self,
        subject: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        """The subject's records between ``since`` and ``until`` (inclusive), oldest first."""
        from boto3.dynamodb.conditions import Key

        low = iso(since) if since else "0"
        high = (iso(until) if until else "9") + "#~"
        condition = Key("pk").eq(f"SUBJECT#{subject_key(subject)}") & Key("sk").between(low, high)
        return list(self._query(limit, KeyConditionExpression=condition))

    def by_target(self, kind: TargetKind, target_id: str, limit: int = 1000) -> list[AuditRecord]:
        """Every record about one notification (bulk, queue, ...), oldest first."""
        from boto3.dynamodb.conditions import Key

        condition = Key("target").eq(f"{kind}#{target_id}")
        return list(self._query(limit, IndexName=BY_TARGET_INDEX, KeyConditionExpression=condition))

    def _query(self, limit: int, **arguments: Any) -> Iterator[AuditRecord]:
        seen = 0
        start: dict[str, Any] | None = None
        while seen < limit:
            page_arguments = dict(arguments, Limit=min(limit - seen, 500))
            if start:
                page_arguments["ExclusiveStartKey"] = start
            try:
                page = self.table.query(**page_arguments)
            except Exception as exc:
                raise AuditUnavailable(type(exc).__name__) from exc
            for item in page.get("Items", []):
                seen += 1
                yield _record(item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return


def _record(item: dict[str, Any]) -> AuditRecord:
    values = {key: item[key] for key in _FIELDS if key in item}
    if "status" in values:
        values["status"] = int(values["status"])
    if "details" in values:
        values["details"] = {
            key: int(value) if not isinstance(value, (bool, str)) else value
            for key, value in values["details"].items()
        }
    return AuditRecord.model_validate(values)


def audit_log_for(table_name: str, retention_days: int = 400) -> AuditLog:
    """An audit log on ``table_name``; the boto3 resource is built on its first read or write."""

    def table() -> Any:
        import boto3

        return boto3.resource("dynamodb").Table(table_name)

    return AuditLog(table, retention_days)


@lru_cache(maxsize=1)
def get_audit_log() -> AuditLog:
    """This container's audit log (``AUDIT_TABLE``, ``AUDIT_RETENTION_DAYS``), built on first use."""
    from tidings.audit.settings import audit_settings

    settings = audit_settings()
    return audit_log_for(settings.audit_table, settings.retention_days)
