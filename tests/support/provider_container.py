"""One "container" of the provider layer over the sandboxes and moto, for the contract tests and the
provider integration tests: the state tables from the template, the secrets, and the settings."""

from __future__ import annotations

from typing import Any

import boto3

from support.template import create_table

REGION = "eu-west-1"
#: The provider layer's state tables: circuit breaker, token buckets, idempotency.
STATE_TABLES = (("CircuitBreakerTable", "breaker"), ("RateLimitTable", "rate"), ("IdempotencyTable", "idem"))


def provider_aws(provider_secret_arns: dict[str, str]) -> dict[str, Any]:
    """The state tables on moto, and the clients a container reads them and its secrets with."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical_id, table in STATE_TABLES:
        create_table(dynamodb, logical_id, table)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    return {"dynamodb": dynamodb, "secretsmanager": secrets, "arns": provider_secret_arns}


def provider_env(sandbox: dict[str, Any], arns: dict[str, str], **overrides: str) -> dict[str, str]:
    """A container's settings: the sandboxes' URLs, the secrets, the state tables; ``overrides`` last."""
    return {
        "STRIPE_API_BASE_URL": sandbox["stripe"].base_url,
        "SENDGRID_API_BASE_URL": sandbox["sendgrid"].base_url,
        "TWILIO_API_BASE_URL": sandbox["twilio"].base_url,
        "STRIPE_SECRET_ARN": arns["stripe"],
        "SENDGRID_SECRET_ARN": arns["sendgrid"],
        "TWILIO_SECRET_ARN": arns["twilio"],
        "CIRCUIT_BREAKER_TABLE": "breaker",
        "RATE_LIMIT_TABLE": "rate",
        "IDEMPOTENCY_TABLE": "idem",
        "RECEIPT_FROM_ADDRESS": "receipts@shop.example",
        "TIDINGS_BREAKER_CACHE_SECONDS": "0",
        **overrides,
    }
