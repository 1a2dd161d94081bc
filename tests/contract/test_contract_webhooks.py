"""(c) Each webhook the sandboxes send has the fields the provider documents: Stripe's Event object and
the object it carries (the ``stripe`` package's classes, Stripe's example objects), SendGrid's Event
Webhook events (its Event Webhook reference) and Twilio's status callbacks (its status-callback guide,
the Message status enum of its OpenAPI description), each signed with the provider's header.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe
import stripe_contract
from provider_contracts import TWILIO, pretty
from twilio.request_validator import RequestValidator

from tidings.providers.models import ChargeRequest, EmailMessage, SmsMessage
from tidings_local.sandboxes import credentials

pytestmark = [
    pytest.mark.integration,
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left"),
]

FIELDS = json.loads((Path(__file__).parent / "vendor" / "webhook_fields.json").read_text())


def posts_to(posts: list[dict], prefix: str) -> list[dict]:
    return [p for p in posts if p["path"].startswith(prefix)]


def stripe_event_problems(post: dict) -> list[str]:
    event = json.loads(post["body"])
    where = f"stripe {event.get('type')}"
    problems = [f"{where}: {p}" for p in stripe_contract.object_problems(event, stripe.Event, "event")]
    obj = (event.get("data") or {}).get("object") or {}
    cls = stripe_contract.OBJECT_CLASSES.get(obj.get("object"))
    if cls is None:
        problems.append(f"{where}: data.object is a {obj.get('object')!r}")
    else:
        problems += [f"{where}: {p}" for p in stripe_contract.object_problems(obj, cls, "data.object")]
    if not str(event.get("type", "")).startswith(str(obj.get("object")) + "."):
        problems.append(f"{where}: the type does not name the object it carries")
    headers = {k.lower(): v for k, v in post["headers"].items()}
    if not headers.get("stripe-signature", "").startswith("t="):
        problems.append(f"{where}: no Stripe-Signature")
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append(f"{where}: not JSON")
    return problems


def test_stripe_webhooks_are_stripe_events(container, sandbox, webhooks):
    gateway = container.payment_gateway()

    def charge(pm: str, key: str) -> ChargeRequest:
        return ChargeRequest(amount=1500, currency="usd", payment_method=pm, idempotency_key=key)

    paid = gateway.charge(charge("pm_card_visa", "wh-1"))
    gateway.refund(paid.payment_intent_id, "wh-refund-1")
    waiting = gateway.charge(charge("pm_card_threeDSecure2Required", "wh-2"))
    gateway.cancel(waiting.payment_intent_id, "wh-cancel-2")
    with pytest.raises(Exception, match="declined"):
        gateway.charge(charge("pm_card_chargeDeclined", "wh-3"))
    expected = {
        "payment_intent.succeeded",
        "charge.refunded",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
    }

    def all_arrived(posts):
        types = {json.loads(p["body"])["type"] for p in posts_to(posts, "/stripe")}
        return expected <= types

    posts = posts_to(webhooks.wait_for(all_arrived), "/stripe")
    problems = {f"#{i}": found for i, p in enumerate(posts) if (found := stripe_event_problems(p))}
    assert problems == {}, pretty(problems)


def sendgrid_event_problems(event: dict, custom_args: set[str]) -> list[str]:
    spec = FIELDS["sendgrid_event_webhook"]
    name = event.get("event")
    where = f"sendgrid {name}"
    if name not in spec["delivery_events"] + spec["engagement_events"]:
        return [f"{where}: not an event SendGrid documents"]
    problems = [f"{where}: {k!r} missing" for k in spec["every_event"] if k not in event]
    problems += [f"{where}: {k!r} missing" for k in spec["by_event"].get(name, []) if k not in event]
    undocumented = set(event) - set(spec["documented"]) - custom_args
    problems += [
        f"{where}: {k!r} is neither a documented field nor a custom arg sent" for k in sorted(undocumented)
    ]
    if not isinstance(event.get("timestamp"), int):
        problems.append(f"{where}: timestamp must be a Unix time (integer)")
    problems += [
        f"{where}: custom arg {k!r} must be a string"
        for k in custom_args
        if not isinstance(event.get(k, ""), str)
    ]
    return problems


def test_sendgrid_webhooks_are_sendgrid_events(container, sandbox, webhooks):
    base = sandbox["sendgrid"].base_url
    httpx.post(base + "/_sandbox/sendgrid/bounces", json={"email": "gone@example.com", "event": "bounce"})
    httpx.post(base + "/_sandbox/sendgrid/bounces", json={"email": "later@example.com", "event": "deferred"})
    httpx.post(base + "/_sandbox/sendgrid/bounces", json={"email": "blocked@example.com", "event": "dropped"})
    channel = container.email_channel("sendgrid")
    for i, to in enumerate(
        ("ada@example.com", "gone@example.com", "later@example.com", "blocked@example.com")
    ):
        channel.send(
            EmailMessage(to=to, subject="Receipt", text="Thanks", idempotency_key=f"wh-mail-{i}",
                         custom_args={"notification_id": f"n-{i}"})
        )  # fmt: skip

    def all_arrived(posts):
        events = [e for p in posts_to(posts, "/sendgrid") for e in json.loads(p["body"])]
        return {"processed", "delivered", "bounce", "deferred", "dropped"} <= {e["event"] for e in events}

    posts = posts_to(webhooks.wait_for(all_arrived), "/sendgrid")
    problems = {}
    for i, post in enumerate(posts):
        headers = {k.lower(): v for k, v in post["headers"].items()}
        found = []
        if "x-twilio-email-event-webhook-signature" not in headers:
            found.append("no X-Twilio-Email-Event-Webhook-Signature")
        if not headers.get("x-twilio-email-event-webhook-timestamp", "").isdigit():
            found.append("no X-Twilio-Email-Event-Webhook-Timestamp")
        body = json.loads(post["body"])
        if not isinstance(body, list):
            found.append("the body is a JSON array of events at SendGrid")
            body = []
        for event in body:
            found += sendgrid_event_problems(event, {"notification_id", "tidings_send_key"})
        if found:
            problems[f"#{i}"] = found
    assert problems == {}, pretty(problems)


def twilio_callback_problems(post: dict, url: str) -> list[str]:
    spec = FIELDS["twilio_status_callback"]
    params = parse_qs(post["body"].decode(), keep_blank_values=True)
    status = (params.get("MessageStatus") or [""])[0]
    where = f"twilio {status}"
    problems = [f"{where}: {k!r} missing" for k in spec["always"] if k not in params]
    problems += [
        f"{where}: {k!r} is not a documented callback property"
        for k in sorted(set(params) - set(spec["documented"]))
    ]
    problems += [f"{where}: {k!r} sent more than once" for k, v in params.items() if len(v) > 1]
    enum = TWILIO.descriptions[0].spec["components"]["schemas"]["message_enum_status"]["enum"]
    if status not in enum:
        problems.append(f"{where}: MessageStatus not one of Twilio's {enum}")
    if status in spec["error_code_when"] and "ErrorCode" not in params:
        problems.append(f"{where}: ErrorCode missing")
    headers = {k.lower(): v for k, v in post["headers"].items()}
    if not headers.get("content-type", "").startswith(spec["content_type"]):
        problems.append(f"{where}: not form-encoded")
    flat = {k: v[0] for k, v in params.items()}
    if not RequestValidator(credentials.TWILIO_AUTH_TOKEN).validate(
        url, flat, headers.get("x-twilio-signature", "")
    ):
        problems.append(
            f"{where}: X-Twilio-Signature does not validate with twilio-python's RequestValidator"
        )
    return problems


def test_twilio_webhooks_are_twilio_status_callbacks(container, sandbox, webhooks, receiver):
    base = sandbox["twilio"].base_url
    httpx.post(base + "/_sandbox/twilio/undeliverable", json={"to": "+447700900999", "status": "undelivered"})
    httpx.post(base + "/_sandbox/twilio/undeliverable", json={"to": "+447700900998", "status": "failed"})
    channel = container.sms_channel("twilio")
    callback = receiver.url + "/twilio/status?notification_id=n-1"
    for i, to in enumerate(("+447700900123", "+447700900999", "+447700900998")):
        channel.send(
            SmsMessage(to=to, body="Paid", idempotency_key=f"wh-sms-{i}", status_callback_url=callback)
        )

    def all_arrived(posts):
        statuses = {
            parse_qs(p["body"].decode()).get("MessageStatus", [""])[0] for p in posts_to(posts, "/twilio")
        }
        return {"sent", "delivered", "undelivered", "failed"} <= statuses

    posts = posts_to(webhooks.wait_for(all_arrived), "/twilio")
    problems = {}
    for i, post in enumerate(posts):
        url = receiver.url + post["path"]
        assert urlsplit(url).path == "/twilio/status"
        if found := twilio_callback_problems(post, url):
            problems[f"#{i}"] = found
    assert problems == {}, pretty(problems)
