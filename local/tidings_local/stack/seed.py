"""Sample data for ``tidings local invoke``: what the ``events/`` samples act on, in a fresh stack.

The seed file (``events/seed/notifications.json``) holds

* ``table_items``: by table logical id, the items exactly as the layer's store writes them
  (``NOTIFICATION#<id>``/``META``, ``PAYMENT_INTENT#<pi>``/``META``), put as they are;
* ``stripe_payment_intents``: payments the Stripe sandbox must know, created through its real API
  (``POST /v1/payment_intents`` with ``confirm=true``) and then given the id the samples name, because
  a sample event is a fixed file while the sandbox, like Stripe, picks random ids.

Only the local stack applies it; nothing under functions/ or layers/ knows it exists.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SEED = PROJECT_ROOT / "events" / "seed" / "notifications.json"


class SeedError(RuntimeError):
    """The seed file names something the stack or the sandboxes do not have."""


def load_seed(path: str | Path = DEFAULT_SEED) -> dict[str, Any]:
    # Decimal: boto3's DynamoDB resource refuses floats.
    return json.loads(Path(path).read_text(), parse_float=Decimal)


def apply_seed(system: Any, seed: dict[str, Any]) -> None:
    """Put the seed's payments in the Stripe sandbox and its items in the stack's tables."""
    intents = seed.get("stripe_payment_intents") or []
    if intents:
        stripe = system.sandboxes.get("stripe")
        if stripe is None:
            log.warning("stripe sandbox not running: %d seeded payment intents left out", len(intents))
        else:
            for spec in intents:
                seed_payment_intent(stripe, spec)
    dynamodb = _dynamodb_resource(system.moto_url)
    for logical_id, items in (seed.get("table_items") or {}).items():
        try:
            table_name = system.physical_id(logical_id)
        except KeyError:
            raise SeedError(f"seed names table {logical_id!r}, which the template does not declare") from None
        table = dynamodb.Table(table_name)
        with table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
        log.debug("seeded %d items into %s", len(items), table_name)


def seed_payment_intent(sandbox: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a confirmed PaymentIntent through the sandbox's API, then file it under ``spec["id"]``."""
    import httpx

    from tidings_local.sandboxes import credentials

    answer = httpx.post(
        f"{sandbox.base_url}/v1/payment_intents",
        headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"},
        data={
            "amount": str(spec["amount"]),
            "currency": spec["currency"],
            "payment_method": spec["payment_method"],
            "confirm": "true",
            "return_url": "https://example.com/return",
            "metadata[notification_id]": spec.get("notification_id", ""),
        },
        timeout=10,
    )
    if answer.status_code != 200:
        raise SeedError(f"stripe sandbox refused seeded payment intent {spec['id']}: {answer.text}")
    created = answer.json()
    wanted = spec["id"]
    provider = sandbox.provider
    with provider.lock:
        intent = provider.intents.pop(created["id"])
        intent["id"] = wanted
        intent["client_secret"] = intent["client_secret"].replace(created["id"], wanted, 1)
        provider.intents[wanted] = intent
        charge = provider.charges.get(intent.get("latest_charge") or "")
        if charge is not None:
            charge["payment_intent"] = wanted
    return intent


def _dynamodb_resource(endpoint_url: str) -> Any:
    import boto3

    from tidings_local.stack.template import REGION

    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
