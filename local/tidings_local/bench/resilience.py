"""Resilience overhead: a Stripe charge through the layer's resilient path vs. a bare httpx request.

All variants send the same ``POST /v1/payment_intents`` (same form, same headers, a fresh
Idempotency-Key each time) to one local Stripe sandbox on 127.0.0.1, over keep-alive connections:

* ``bare httpx``: one ``httpx.Client.post``, nothing else;
* ``resilient, no shared tables``: ``ProviderFactory().payment_gateway().charge`` with no breaker table
  and an in-memory token bucket (retry policy, budget, typed errors, redacted logs, metrics);
* ``resilient, tables on moto``: the same with the charge function's settings from template.yaml: the
  failure-rate circuit breaker and the token bucket in DynamoDB tables built from the template's own
  table properties, on moto (``mock_aws``, in process), credentials in moto's Secrets Manager.

The account rate is raised so the bucket never runs dry: waiting for a token is the limit doing its
job, not overhead. Logs and EMF metrics are formatted as in production and then discarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BARE = "bare httpx"
NO_TABLES = "resilient, no shared tables"
WITH_TABLES = "resilient, tables on moto"
VARIANTS = (BARE, NO_TABLES, WITH_TABLES)

_TABLES = {
    "CircuitBreakerTable": "bench-breaker",
    "RateLimitTable": "bench-rate",
    "IdempotencyTable": "bench-idem",
}
_REGION = "us-east-1"
_UNLIMITED_RATE = "1000000"


@dataclass
class Latency:
    name: str
    requests: int
    median_ms: float
    p90_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "median_ms": round(self.median_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
        }


def _summary(name: str, seconds: list[float]) -> Latency:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return Latency(name, len(ms), statistics.median(ms), p90, statistics.fmean(ms))


@contextlib.contextmanager
def _environ(values: dict[str, str], remove: tuple[str, ...]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in (*values, *remove)}
    os.environ.update(values)
    for key in remove:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_observability() -> Iterator[None]:
    """Format every log line and metric as production does, then drop them instead of printing."""
    from tidings.observability import logger, metrics

    handler = logger.registered_handler
    with open(os.devnull, "w") as sink:
        previous = handler.setStream(sink)
        try:
            with contextlib.redirect_stdout(sink):
                yield
        finally:
            handler.setStream(previous)
            metrics.clear_metrics()  # what the requests recorded is benchmark noise, not to be published


def _production_environment(template_path: Path) -> dict[str, str]:
    """The charge function's variables as template.yaml sets them (Globals included)."""
    from tidings_local.bench.coldstart import handler_targets

    (target,) = handler_targets(template_path, only=["ChargePaymentFunction"])
    return dict(target.environment or {})


def _create_tables(template_path: Path, dynamodb: Any) -> None:
    from tidings_local.bench.coldstart import load_bench_template

    resources = load_bench_template(template_path).resources
    for logical_id, name in _TABLES.items():
        properties = resources[logical_id]["Properties"]
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        )


def measure(template_path: Path, requests: int, warmup: int = 10) -> list[Latency]:
    """Median latency of ``requests`` charges per variant, interleaved request by request."""
    import boto3
    import httpx
    from moto import mock_aws

    from tidings.config import load_settings
    from tidings.providers.factory import ProviderFactory
    from tidings.providers.models import ChargeRequest
    from tidings.providers.stripe import StripePaymentGateway
    from tidings_local.sandboxes import credentials, start_sandbox

    fake_aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    production = _production_environment(template_path)
    with (
        _environ(fake_aws, remove=("AWS_ENDPOINT_URL", "AWS_PROFILE")),
        start_sandbox("stripe") as sandbox,
        mock_aws(),
        httpx.Client(follow_redirects=False) as bare_client,
        _quiet_observability(),
    ):
        dynamodb = boto3.client("dynamodb", region_name=_REGION)
        secrets = boto3.client("secretsmanager", region_name=_REGION)
        _create_tables(template_path, dynamodb)
        secret_arn = secrets.create_secret(
            Name="tidings/bench/stripe", SecretString=json.dumps({"api_key": credentials.STRIPE_API_KEY})
        )["ARN"]
        environment = {
            **production,
            "STRIPE_API_BASE_URL": sandbox.base_url,
            "STRIPE_SECRET_ARN": secret_arn,
            "STRIPE_RATE_PER_SECOND": _UNLIMITED_RATE,
            "CIRCUIT_BREAKER_TABLE": _TABLES["CircuitBreakerTable"],
            "RATE_LIMIT_TABLE": _TABLES["RateLimitTable"],
            "IDEMPOTENCY_TABLE": _TABLES["IdempotencyTable"],
        }
        without_tables = {
            k: v for k, v in environment.items() if k not in ("CIRCUIT_BREAKER_TABLE", "RATE_LIMIT_TABLE")
        }
        gateways: dict[str, StripePaymentGateway] = {
            WITH_TABLES: ProviderFactory(
                load_settings(environment), dynamodb_client=dynamodb, secrets_client=secrets
            ).payment_gateway(),
            NO_TABLES: ProviderFactory(
                load_settings(without_tables), dynamodb_client=dynamodb, secrets_client=secrets
            ).payment_gateway(),
        }
        api_version = load_settings(environment).stripe_api_version

        def charge_request() -> ChargeRequest:
            return ChargeRequest(
                amount=2500,
                currency="gbp",
                payment_method="pm_card_visa",
                description="Benchmark order",
                metadata={"order_id": "bench"},
                idempotency_key=f"bench-{uuid.uuid4().hex}",
            )

        def bare_charge() -> None:
            from tidings.providers.stripe import encode_form

            request = charge_request()
            form = encode_form(
                {
                    "amount": request.amount,
                    "currency": request.currency,
                    "payment_method": request.payment_method,
                    "payment_method_types": ["card"],
                    "confirm": True,
                    "description": request.description,
                    "metadata": request.metadata,
                }
            )
            response = bare_client.post(
                f"{sandbox.base_url}/v1/payment_intents",
                data=form,
                headers={
                    "Authorization": f"Bearer {credentials.STRIPE_API_KEY}",
                    "Stripe-Version": api_version,
                    "Idempotency-Key": request.idempotency_key,
                },
            )
            if response.status_code != 200 or response.json()["status"] != "succeeded":
                raise RuntimeError(f"bare charge answered {response.status_code}")

        def resilient_charge(name: str) -> Callable[[], None]:
            def run() -> None:
                result = gateways[name].charge(charge_request())
                if result.status != "succeeded":
                    raise RuntimeError(f"resilient charge ended {result.status}")

            return run

        calls = {
            BARE: bare_charge,
            NO_TABLES: resilient_charge(NO_TABLES),
            WITH_TABLES: resilient_charge(WITH_TABLES),
        }
        # Warm-up: connections opened, credentials cached, breaker and bucket items written once.
        for _ in range(warmup):
            for call in calls.values():
                call()
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(requests):
            for name in VARIANTS:
                started = time.perf_counter()
                calls[name]()
                timings[name].append(time.perf_counter() - started)
    return [_summary(name, timings[name]) for name in VARIANTS]
