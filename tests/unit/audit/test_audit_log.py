"""The audit log on moto: append-only, queryable by subject and time and by target, nothing personal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError
from support.template import create_table

from tidings.audit import AuditEntry, AuditLog, AuditUnavailable, subject_key

pytestmark = pytest.mark.unit

REGION = "eu-west-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def audit(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        create_table(boto3.client("dynamodb"), "AuditTable", "audit")
        table = boto3.resource("dynamodb").Table("audit")
        yield AuditLog(lambda: table, retention_days=30, clock=Clock()), table


def sent(subject: str, notification_id: str, **extra) -> AuditEntry:
    return AuditEntry(
        subject=subject,
        actor="client",
        action="notifications.create",
        outcome="ok",
        status=202,
        route="POST /notifications",
        scopes=["notifications/write"],
        target_kind="notification",
        target_id=notification_id,
        request_id="req-1",
        **extra,
    )


def test_who_sent_a_notification_and_what_a_subject_did_today(audit):
    # Given two clients' calls over two days
    log, _table = audit
    log.clock.now = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    log.record(sent("shop-a", "n-yesterday"))
    log.clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    log.record(sent("shop-a", "n-1"))
    log.record(sent("shop-b", "n-2"))
    log.clock.now += timedelta(minutes=5)
    log.record(
        AuditEntry(
            subject="shop-a",
            actor="client",
            action="notifications.get",
            outcome="refused",
            status=404,
            code="not_found",
            route="GET /notifications/{notification_id}",
            scopes=["notifications/read"],
            target_kind="notification",
            target_id="n-2",
        )
    )

    # When / Then: who sent n-2? shop-b sent it; shop-a only tried to read it
    about_n2 = log.by_target("notification", "n-2")
    assert [(r.subject, r.action, r.outcome) for r in about_n2] == [
        ("shop-b", "notifications.create", "ok"),
        ("shop-a", "notifications.get", "refused"),
    ]
    # What did shop-a do today? Two calls, oldest first; yesterday's is not among them
    today = datetime(2026, 12, 2, tzinfo=UTC)
    records = log.by_subject("shop-a", since=today, until=today + timedelta(days=1))
    assert [(r.action, r.target_id) for r in records] == [
        ("notifications.create", "n-1"),
        ("notifications.get", "n-2"),
    ]
    assert records[0].scopes == ["notifications/write"]
    assert records[0].request_id == "req-1"
    assert records[0].at == "2026-12-02T09:00:00.000000Z"


def test_records_are_never_overwritten_and_expire_after_the_retention(audit):
    log, table = audit
    record = log.record(sent("shop-a", "n-1"))
    item = table.scan()["Items"][0]
    assert int(item["expires_at"]) == int((log.clock.now + timedelta(days=30)).timestamp())
    # A put of the same key is refused by the condition every write carries
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    assert log.by_target("notification", "n-1") == [record]


def test_personal_data_cannot_be_recorded():
    for bad in (
        {"target_id": "ada@example.com"},
        {"target_id": "+15005550006"},
        {"details": {"name": "Ada Lovelace"}},
        {"request_id": "a b"},
    ):
        with pytest.raises(ValidationError):
            AuditEntry.model_validate({**sent("shop-a", "n-1").model_dump(), **bad})


def test_a_subject_that_is_not_identifier_shaped_is_stored_hashed(audit):
    log, table = audit
    entry = sent(subject_key("ada@example.com"), "n-1")
    log.record(entry)
    assert "ada@example.com" not in str(table.scan()["Items"])
    assert [r.target_id for r in log.by_subject("ada@example.com")] == ["n-1"]
    assert subject_key("shop-a") == "shop-a"


def test_an_unwritable_table_raises_a_typed_error_or_is_counted_quietly(audit, capsys):
    log = AuditLog(lambda: boto3.resource("dynamodb").Table("missing"))
    with pytest.raises(AuditUnavailable):
        log.record(sent("shop-a", "n-1"))
    assert log.record_quietly(sent("shop-a", "n-1")) is None
    assert "AuditWriteFailed" in capsys.readouterr().out


def test_a_suppression_change_is_recorded_by_its_id_never_its_address(audit):
    from tidings.audit.suppressions import AuditedSuppressionChanges
    from tidings.suppressions.models import SuppressionChange

    log, _table = audit
    change = SuppressionChange.model_validate(
        {
            "action": "added",
            "suppression_id": "sup-abc123",
            "channel": "email",
            "reason": "operator",
            "source": "operator",
            "actor": "operator-1",
            "at": "2026-12-02T09:00:00Z",
        }
    )
    AuditedSuppressionChanges(log).record(change)
    [record] = log.by_target("suppression", "sup-abc123")
    assert (record.subject, record.actor, record.action) == ("operator-1", "operator", "suppression.added")
    assert record.details["channel"] == "email"
