"""What the operator commands and the local console do, on any target, through boto3 only.

Each function returns plain data (the CLI renders it as a table or JSON; the console as HTML), built on
the layer's own read side (``tidings.api.queries``, ``tidings.api.service``), so the operator sees what
the API answers, with the same masking.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from tidings.notifications.models import FINAL_STATUSES
from tidings_ops.errors_text import aws_call
from tidings_ops.stack import StackResources
from tidings_ops.target import OperatorError, Target

FINAL = frozenset(str(status) for status in FINAL_STATUSES)
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``1h``, ``2d`` ago, or an ISO 8601 time (UTC when it has no offset)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OperatorError(
            f"--since {text!r} is neither a duration (30m, 1h, 2d) nor an ISO time (2026-03-01T10:00Z)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


@dataclass
class Operations:
    target: Target

    @cached_property
    def resources(self) -> StackResources:
        return StackResources(self.target)

    @cached_property
    def store(self) -> Any:
        from tidings.notifications.store import NotificationStore

        return NotificationStore(self.resources.notifications_table)

    @cached_property
    def queries(self) -> Any:
        from tidings.api.queries import NotificationQueries

        return NotificationQueries(
            store=self.store,
            table=self.resources.notifications_table,
            stepfunctions=lambda: self.target.client("stepfunctions"),
        )

    @property
    def sfn(self) -> Any:
        return self.target.client("stepfunctions")

    def _call(self, what: str) -> Any:
        return aws_call(self.target, what)

    # --- notifications ---------------------------------------------------------------------------
    def list_notifications(
        self, *, client: str | None = None, limit: int = 25, cursor: str | None = None, **filters: Any
    ) -> dict[str, Any]:
        from pydantic import ValidationError

        from tidings.api.queries import InvalidQuery, NotificationFilters, NotificationPage, summary

        try:
            chosen = NotificationFilters(
                limit=limit, cursor=cursor, **{k: v for k, v in filters.items() if v}
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise OperatorError(f"Invalid filter: {problems}.") from None
        if client or chosen.order_reference or chosen.bulk_id:
            try:
                with self._call("DynamoDB Query"):
                    return self.queries.list(client, chosen).model_dump(mode="json", exclude_unset=True)
            except InvalidQuery as exc:
                raise OperatorError(f"{exc.message}.") from None
        # Every client's recent notifications: the saga's executions are named by notification id.
        if cursor:
            raise OperatorError("--cursor continues a listing by --client, --order-reference or --bulk-id.")
        names = [execution["name"] for execution in self.executions(limit=min(limit * 4, 1000))]
        with self._call("DynamoDB BatchGetItem"):
            found = self.store.get_many(names)
        rows = []
        for name in names:
            notification = found.get(name)
            if notification is None:
                continue
            item = notification.model_dump(mode="json", exclude_none=True)
            if not _matches(item, chosen):
                continue
            rows.append(summary(item))
            if len(rows) == limit:
                break
        page = NotificationPage(items=rows, count=len(rows), next_cursor=None)
        return page.model_dump(mode="json", exclude_unset=True)

    def notification(self, notification_id: str) -> dict[str, Any]:
        from tidings.api.service import NotificationService
        from tidings.notifications.store import NotificationNotFound

        try:
            with self._call("DynamoDB GetItem"):
                item = self.store.get(notification_id)
                service = NotificationService(self.store, lambda: None, lambda: None, "")
                return service.status(item.client_id, notification_id).model_dump(mode="json")
        except NotificationNotFound:
            raise OperatorError(f"No notification {notification_id} on {self.target.where}.") from None

    def timeline(self, notification_id: str) -> dict[str, Any]:
        from tidings.notifications.store import NotificationNotFound

        try:
            with self._call("Step Functions GetExecutionHistory"):
                timeline = self.queries.timeline(None, notification_id)
                return timeline.model_dump(mode="json", exclude_unset=True)
        except NotificationNotFound:
            raise OperatorError(f"No notification {notification_id} on {self.target.where}.") from None

    def bulk(self, bulk_id: str) -> dict[str, Any]:
        from tidings.api.service import NotificationService
        from tidings.notifications.store import NotificationNotFound

        try:
            with self._call("DynamoDB Query"):
                bulk = self.store.get_bulk(bulk_id)
                service = NotificationService(self.store, lambda: None, lambda: None, "")
                return service.bulk_status(bulk.client_id, bulk_id).model_dump(mode="json")
        except NotificationNotFound:
            raise OperatorError(f"No bulk request {bulk_id} on {self.target.where}.") from None

    def watch(
        self, notification_id: str, *, timeout: float = 300, interval: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """The notification each time its status changes, until it is final (or ``timeout``)."""
        deadline, last = time.monotonic() + timeout, None
        while True:
            current = self.notification(notification_id)
            state = (
                current["status"],
                tuple(sorted((k, v.get("status")) for k, v in current["channels"].items())),
            )
            if state != last:
                last = state
                yield current
            if current["status"] in FINAL or time.monotonic() > deadline:
                return
            time.sleep(interval)

    def watch_bulk(
        self, bulk_id: str, *, timeout: float = 1800, interval: float = 2.0
    ) -> Iterator[dict[str, Any]]:
        """The bulk request's counts until every accepted item is final (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.bulk(bulk_id)
            accepted = [item for item in status["items"] if item["status"] == "accepted"]
            done = sum(1 for item in accepted if item.get("notification_status") in FINAL)
            yield {"bulk_id": bulk_id, "total": len(accepted), "done": done, "counts": status["counts"]}
            if done == len(accepted) or time.monotonic() > deadline:
                return
            time.sleep(interval)

    # --- executions ------------------------------------------------------------------------------
    def executions(self, *, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "stateMachineArn": self.resources.state_machine_arn,
            "maxResults": min(limit, 1000),
        }
        if status:
            request["statusFilter"] = status.upper()
        rows: list[dict[str, Any]] = []
        with self._call("Step Functions ListExecutions"):
            while len(rows) < limit:
                page = self.sfn.list_executions(**request)
                rows.extend(page.get("executions", []))
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
        return [
            {
                "name": execution["name"],
                "status": execution["status"],
                "started": iso(execution.get("startDate")),
                "stopped": iso(execution.get("stopDate")),
                "arn": execution["executionArn"],
            }
            for execution in rows[:limit]
        ]

    def execution_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        machine = self.resources.state_machine_arn
        return machine.replace(":stateMachine:", ":execution:") + f":{name_or_arn}"

    def execution(self, name_or_arn: str) -> dict[str, Any]:
        from tidings_ops.paths import state_path

        arn = self.execution_arn(name_or_arn)
        try:
            with self._call("Step Functions DescribeExecution"):
                described = self.sfn.describe_execution(executionArn=arn)
                history = self.queries.execution_history(arn)
        except OperatorError as exc:
            if "ExecutionDoesNotExist" in str(exc):
                raise OperatorError(f"No execution {name_or_arn} on {self.target.where}.") from None
            raise
        return {
            "name": described["name"],
            "status": described["status"],
            "started": iso(described.get("startDate")),
            "stopped": iso(described.get("stopDate")),
            "arn": arn,
            "path": state_path(history),
        }

    def definition(self) -> dict[str, Any]:
        import json

        with self._call("Step Functions DescribeStateMachine"):
            described = self.sfn.describe_state_machine(stateMachineArn=self.resources.state_machine_arn)
        return json.loads(described["definition"])

    # --- failures --------------------------------------------------------------------------------
    def errors(self, since: datetime, *, max_executions: int = 500) -> list[dict[str, Any]]:
        """Failed provider calls since ``since``, grouped by provider, error type and code."""
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        cutoff = iso(since) or ""
        for execution in self.executions(limit=max_executions):
            if (execution["started"] or "") < cutoff and (execution["stopped"] or "9") < cutoff:
                continue
            with self._call("DynamoDB Query"):
                events = [event.model_dump(mode="json") for event in self.store.timeline(execution["name"])]
            for event in events:
                if event.get("outcome") != "failed" or str(event.get("at", "")) < cutoff:
                    continue
                details = event.get("details") or {}
                key = (
                    str(event.get("provider") or "saga"),
                    str(details.get("error_type") or "unknown"),
                    str(details.get("code") or details.get("decline_code") or ""),
                )
                group = groups.setdefault(
                    key,
                    {
                        "provider": key[0],
                        "error_type": key[1],
                        "code": key[2] or None,
                        "count": 0,
                        "first_seen": event["at"],
                        "last_seen": event["at"],
                        "steps": set(),
                        "notifications": set(),
                    },
                )
                group["count"] += 1
                group["first_seen"] = min(group["first_seen"], event["at"])
                group["last_seen"] = max(group["last_seen"], event["at"])
                group["steps"].add(event.get("step"))
                group["notifications"].add(execution["name"])
            if execution["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
                key = ("saga", f"Execution{execution['status'].title().replace('_', '')}", "")
                group = groups.setdefault(
                    key,
                    {
                        "provider": "saga",
                        "error_type": key[1],
                        "code": None,
                        "count": 0,
                        "first_seen": execution["stopped"],
                        "last_seen": execution["stopped"],
                        "steps": set(),
                        "notifications": set(),
                    },
                )
                group["count"] += 1
                group["notifications"].add(execution["name"])
        rows = []
        for group in sorted(groups.values(), key=lambda g: (-g["count"], g["provider"], g["error_type"])):
            rows.append(
                group
                | {
                    "steps": sorted(s for s in group["steps"] if s),
                    "notifications": len(group["notifications"]),
                    "example": sorted(group["notifications"])[0],
                }
            )
        return rows

    # --- the audit log ---------------------------------------------------------------------------
    @cached_property
    def audit(self) -> Any:
        from tidings.audit import AuditLog

        return AuditLog(
            lambda: self.target.resource("dynamodb").Table(self.resources.physical_id("AuditTable"))
        )

    @cached_property
    def operator(self) -> str:
        """Who runs this command, as the audit log names operators: ``iam:<unique id>`` (the IAM user's
        or role's id, never its name or a role session's name, which may be a person's)."""
        with self._call("STS GetCallerIdentity"):
            user_id = str(self.target.client("sts").get_caller_identity()["UserId"])
        return "iam:" + user_id.split(":", 1)[0]

    def record(
        self,
        action: str,
        outcome: str,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """One audit record of an operator action; False (and nothing raised) if it could not be written."""
        from tidings.audit import AuditEntry, AuditUnavailable

        try:
            entry = AuditEntry.model_validate(
                {
                    "subject": self.operator,
                    "actor": "operator",
                    "action": action,
                    "outcome": outcome,
                    "target_kind": target_kind,
                    "target_id": target_id,
                    "details": {k: v for k, v in (details or {}).items() if v is not None},
                }
            )
            self.audit.record(entry)
        except (AuditUnavailable, OperatorError, ValueError):
            return False
        return True

    def audit_records(
        self,
        *,
        notification_id: str | None = None,
        bulk_id: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """The audit log by notification (with the bulk request that sent it), by bulk, or by subject."""
        from tidings.audit import AuditUnavailable

        try:
            return self._audit_records(notification_id, bulk_id, subject, since, until, limit)
        except AuditUnavailable as exc:
            raise OperatorError(f"The audit log could not be read ({exc}).") from None

    def _audit_records(
        self,
        notification_id: str | None,
        bulk_id: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        with self._call("DynamoDB Query (audit)"):
            if subject:
                records = self.audit.by_subject(subject, since, until, limit)
            elif bulk_id:
                records = self.audit.by_target("bulk", bulk_id, limit)
            else:
                records = self.audit.by_target("notification", str(notification_id), limit)
                sent_in = self._bulk_of(str(notification_id))
                if sent_in:
                    records = sorted(
                        [*records, *self.audit.by_target("bulk", sent_in, limit)], key=lambda r: r.at
                    )
        return [record.model_dump(mode="json") for record in records[:limit]]

    def _bulk_of(self, notification_id: str) -> str | None:
        from tidings.notifications.store import NotificationNotFound

        try:
            return str(self.store.get(notification_id).bulk_id or "") or None
        except NotificationNotFound:
            return None

    # --- dead-letter queues ----------------------------------------------------------------------
    @cached_property
    def dlq(self) -> Any:
        from tidings_ops.dlq import DeadLetterQueues

        return DeadLetterQueues(self.target.client("sqs"), self.target.stack_name)

    # --- replay ----------------------------------------------------------------------------------
    def replay(
        self, notification_id: str, *, wait: float = 120, on_change: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Run the stored notification again as a new one and compare the two outcomes."""
        from tidings_ops.replay import replay_notification

        return replay_notification(self, notification_id, wait=wait, on_change=on_change)


def _matches(item: dict[str, Any], filters: Any) -> bool:
    channels = item.get("channels") or {}
    checks = (
        (filters.status, item.get("status")),
        (filters.email_status, (channels.get("email") or {}).get("status")),
        (filters.sms_status, (channels.get("sms") or {}).get("status")),
    )
    if any(wanted is not None and wanted.value != actual for wanted, actual in checks):
        return False
    created = str(item.get("created_at", ""))
    since = filters.created_since and iso(filters.created_since)
    until = filters.created_until and iso(filters.created_until)
    return not ((since and created < since) or (until and created > until))
