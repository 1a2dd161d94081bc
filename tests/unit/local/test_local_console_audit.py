"""The console's redrive button leaves the same audit record as ``tidings dlq redrive``."""

from __future__ import annotations

from typing import Any

import pytest

from tidings_local.console.server import Console

pytestmark = pytest.mark.unit

QUEUE_URL = "http://127.0.0.1:5000/123456789012/tidings-local-SmsDeadLetterQueue"
TARGET_URL = "http://127.0.0.1:5000/123456789012/tidings-local-SmsOutageQueue"


class FakeQueues:
    def redrive(self, queue: str) -> dict[str, Any]:
        return {"from": QUEUE_URL, "to": TARGET_URL, "moved": 3, "dry_run": False, "messages": []}


class FakeOps:
    def __init__(self, writes: bool = True) -> None:
        self.dlq = FakeQueues()
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self.writes = writes

    def record(self, action: str, outcome: str, **fields: Any) -> bool:
        self.records.append((action, outcome, fields))
        return self.writes


def test_a_console_redrive_is_audited_by_queue_with_what_it_moved():
    ops = FakeOps()
    answer = Console(ops).redrive("sms")
    assert answer == "moved 3 message(s) from sms"
    assert ops.records == [
        (
            "dlq.redrive",
            "ok",
            {
                "target_kind": "queue",
                "target_id": "tidings-local-SmsDeadLetterQueue",
                "details": {"moved": 3, "to": "tidings-local-SmsOutageQueue", "via": "console"},
            },
        )
    ]


def test_a_redrive_whose_audit_cannot_be_written_still_moves_and_is_logged(caplog):
    ops = FakeOps(writes=False)
    assert Console(ops).redrive("sms") == "moved 3 message(s) from sms"
    assert "audit record of a console redrive could not be written" in caplog.text
