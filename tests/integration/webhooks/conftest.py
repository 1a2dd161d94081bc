"""Moto-backed AWS for the webhook Lambdas, built from template.yaml's own resource properties.

Each test gets fresh tables, queues and secrets, and freshly imported handler modules (a cold start),
with the environment the template gives the functions.
"""

import importlib.util
import json
import sys
import uuid
from types import SimpleNamespace

import boto3
import pytest
from support.template import ROOT, create_table, resource_properties, sam_template

PARAMETERS = sam_template().get("Parameters", {})


def _value(value):
    """A property's value, with a Ref to a template parameter resolved to the parameter's default."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PARAMETERS:
        return PARAMETERS[value["Ref"]]["Default"]
    return value


REGION = "eu-west-1"


def _table(dynamodb, logical_id: str) -> str:
    return create_table(dynamodb, logical_id, f"{logical_id}-{uuid.uuid4().hex[:6]}")


def _queue(sqs, logical_id: str, dlq_arn: str | None = None) -> str:
    props = resource_properties(logical_id)
    attributes = {
        key: str(_value(props[key]))
        for key in ("VisibilityTimeout", "MessageRetentionPeriod")
        if key in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"]}
        )
    return sqs.create_queue(QueueName=f"{logical_id}-{uuid.uuid4().hex[:6]}", Attributes=attributes)[
        "QueueUrl"
    ]


@pytest.fixture
def atomic_dynamodb_writes(monkeypatch):
    """DynamoDB applies each conditional write atomically; moto's in-memory backend does not lock, so
    two threads can both pass the same condition. Serialise moto's writes the way DynamoDB does, so the
    concurrency tests exercise the code's conditions rather than moto's race."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args, __original=original, **kwargs):
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


@pytest.fixture
def aws(monkeypatch, atomic_dynamodb_writes, provider_secret_arns):
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "tidings")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Tidings")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = _queue(sqs, "WebhookDeadLetterQueue")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    env = {
        "NOTIFICATIONS_TABLE": _table(dynamodb, "NotificationsTable"),
        "WEBHOOK_EVENTS_TABLE": _table(dynamodb, "WebhookEventsTable"),
        "WEBHOOK_QUEUE_URL": _queue(sqs, "WebhookQueue", dlq_arn),
        **{f"{name.upper().replace('-', '_')}_SECRET_ARN": arn for name, arn in provider_secret_arns.items()},
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return SimpleNamespace(
        env=env, dlq_url=dlq_url, sqs=sqs, dynamodb=boto3.resource("dynamodb", region_name=REGION)
    )


def load_handler(function_dir: str, module_name: str | None = None):
    """Import functions/<dir>/app.py as a fresh module: one cold start per call.

    Every container of one function shares its dedupe records (their keys start with the function's
    name, as on Lambda); ``module_name`` names the fresh module (two loads with one name play two
    containers of one function)."""
    from aws_lambda_powertools.utilities import parameters

    from tidings.webhooks import settings

    settings.receiver_settings.cache_clear()
    settings.processor_settings.cache_clear()
    parameters.clear_caches()
    name = module_name or f"{function_dir}_app_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function_dir / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    function_name = "webhook-test"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:webhook-test"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def receiver(aws):
    return load_handler("webhook_receiver")


@pytest.fixture
def processor(aws):
    return load_handler("webhook_processor")


@pytest.fixture
def cold_start(aws):
    """``cold_start("webhook_processor")``: a fresh import, for a test that sets its own environment or
    plays several containers."""
    return load_handler


@pytest.fixture
def context():
    return LambdaContext()
