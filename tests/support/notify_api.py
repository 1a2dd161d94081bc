"""The notify API's handler in-process, on moto, for the API unit tests: its tables from the template,
a one-state machine to start, its settings in the environment, ``functions/notify_api/app.py`` loaded
fresh (its cold start reads them)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from support.lambda_context import NotifyApiContext
from support.saga import create_table_from_template
from support.template import ROOT
from tidings.notifications import store as notification_store


@dataclass
class NotifyApiHandler:
    module: ModuleType
    table: Any
    machine: str
    queue_url: str | None

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's raw answer."""
        return self.module.lambda_handler(event, NotifyApiContext())

    def call(self, event: dict[str, Any]) -> tuple[int, Any]:
        """The answer's status and its JSON body (None when it has none)."""
        response = self.invoke(event)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def start_notify_api(
    monkeypatch: pytest.MonkeyPatch,
    *,
    module_name: str = "notify_api_app",
    rate_limit: bool = False,
    bulk_queue: bool = False,
    **env: str,
) -> NotifyApiHandler:
    """The handler over fresh tables (notifications, idempotency, audit; rate-limit with ``rate_limit``),
    a state machine and, with ``bulk_queue``, the bulk queue; ``env`` adds or overrides settings."""
    table = create_table_from_template("NotificationsTable", "notifications")
    create_table_from_template("IdempotencyTable", "idempotency")
    create_table_from_template("AuditTable", "audit")
    settings = {
        "NOTIFICATIONS_TABLE": "notifications",
        "IDEMPOTENCY_TABLE": "idempotency",
        "AUDIT_TABLE": "audit",
    }
    if rate_limit:
        create_table_from_template("RateLimitTable", "rate-limit")
        settings["RATE_LIMIT_TABLE"] = "rate-limit"
    machine = boto3.client("stepfunctions").create_state_machine(
        name="saga",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/saga",
    )["stateMachineArn"]
    settings["STATE_MACHINE_ARN"] = machine
    queue_url = None
    if bulk_queue:
        queue_url = boto3.client("sqs").create_queue(QueueName="bulk")["QueueUrl"]
        settings["BULK_QUEUE_URL"] = queue_url
    settings["POWERTOOLS_METRICS_NAMESPACE"] = "Tidings"
    for name, value in (settings | env).items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions/notify_api/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    notification_store.get_store.cache_clear()
    return NotifyApiHandler(module=module, table=table, machine=machine, queue_url=queue_url)
