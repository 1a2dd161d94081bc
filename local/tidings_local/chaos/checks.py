"""What every notification of a chaos cell must satisfy, judged from what the sandboxes saw.

* ``final``: it ended in exactly one final status (one ``RecordOutcome`` in its timeline, the execution
  ended, the status one the cell allows);
* ``twice``: no second charge or refund at Stripe, no second e-mail (SendGrid + SES) or SMS (Twilio +
  SNS), counted by recipient and by the idempotency key sent with it;
* ``parked``: every failure waits on a queue with its reason (a dead-lettered channel, a failed refund),
  and every non-delivered status says why;
* ``attempts``: no state ran more often than its Retry policy allows, and no provider saw more requests
  than those attempts times the layer's in-call attempts;
* ``timeline``: the notification's record matches the providers' (the payment intent and refund it
  names exist and belong to it; a channel recorded as sent names the one message the provider holds;
  a channel recorded as not sent has no message anywhere).

Each problem is a string ``"<check>: <detail>"``; the detail names ids and counts, never an address.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

SENT = {"sent", "delivered"}
NOT_SENT = {"dead_lettered", "failed", "skipped", "parked", "pending"}
CHARGED = {"delivered", "delivered_with_fallback", "partially_delivered", "compensated"}
NEEDS_REASON = {"partially_delivered", "payment_declined", "payment_not_taken", "compensated", "failed"}
SEND_STATES = {
    "stripe": ("ChargePayment",),
    "sendgrid": ("SendReceiptEmail",),
    "twilio": ("SendSms",),
}


@dataclass
class Policy:
    """The configured limits: attempts per state (1 + every retrier's MaxAttempts) and in-call attempts."""

    state_attempts: dict[str, int]
    transient_attempts: int = 3
    rate_limited_attempts: int = 10
    breaker_recovery_seconds: float = 30.0

    @classmethod
    def from_system(cls, system: Any, layer_settings: dict[str, str]) -> Policy:
        stepfunctions = system.boto3_client("stepfunctions")
        arn = system.physical_id("NotificationSagaStateMachine")
        definition = json.loads(stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"])
        return cls(
            state_attempts=state_attempts(definition),
            transient_attempts=int(layer_settings.get("TIDINGS_TRANSIENT_MAX_ATTEMPTS", 3)),
            rate_limited_attempts=int(layer_settings.get("TIDINGS_RATE_LIMITED_MAX_ATTEMPTS", 10)),
            breaker_recovery_seconds=float(layer_settings.get("TIDINGS_BREAKER_RECOVERY_SECONDS", 30)),
        )


def state_attempts(definition: dict[str, Any]) -> dict[str, int]:
    limits = {}
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task":
            limits[name] = 1 + sum(int(r.get("MaxAttempts", 3)) for r in state.get("Retry", []))
    return limits


@dataclass
class Evidence:
    notifications: dict[str, dict[str, Any]]
    contacts: dict[str, tuple[str, str]]  # notification id -> (email, phone)
    stripe: dict[str, Any]
    stripe_requests: list[dict[str, Any]]
    sendgrid_mails: list[dict[str, Any]]
    sendgrid_requests: list[dict[str, Any]]
    twilio_messages: list[dict[str, Any]]
    twilio_requests: list[dict[str, Any]]
    ses_messages: list[tuple[str, list[str]]]  # (message id, recipients)
    sns_messages: list[tuple[str, str]]  # (message id, phone)
    histories: dict[str, dict[str, int]]  # notification id -> attempts per state
    execution_status: dict[str, str]
    parked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> queue bodies

    def counts(self) -> dict[str, int]:
        return {
            "charges": sum(
                1 for pi in self.stripe.get("payment_intents", []) if pi.get("status") == "succeeded"
            ),
            "refunds": len(self.stripe.get("refunds", [])),
            "emails": len(self.sendgrid_mails) + len(self.ses_messages),
            "sms": len(self.twilio_messages) + len(self.sns_messages),
            "parked": sum(len(v) for v in self.parked.values()),
        }

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(n["status"] for n in self.notifications.values()))


def collect(rig: Any, ids: list[str], sent: dict[str, Any]) -> Evidence:
    from tidings_local.chaos.runner import PARKING_QUEUES

    system = rig.system
    notifications = {nid: rig.get(nid) for nid in ids}
    contacts = {nid: (sent[nid].email, sent[nid].phone) for nid in ids}
    emails = {email for email, _ in contacts.values()}
    phones = {phone for _, phone in contacts.values()}
    sandboxes = system.sandboxes
    stripe = sandboxes["stripe"].control.state()
    mails = [m for m in sandboxes["sendgrid"].control.state()["mails"] if set(m["recipients"]) & emails]
    messages = [m for m in sandboxes["twilio"].control.state()["messages"] if m["to"] in phones]
    stepfunctions = system.boto3_client("stepfunctions")
    histories: dict[str, dict[str, int]] = {}
    execution_status: dict[str, str] = {}
    for nid, notification in notifications.items():
        arn = notification.get("execution_arn")
        if not arn:
            continue
        execution_status[nid] = stepfunctions.describe_execution(executionArn=arn)["status"]
        histories[nid] = attempts_from_history(
            stepfunctions.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        )
    parked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sqs = system.boto3_client("sqs")
    for logical_id in PARKING_QUEUES:
        for body in peek(sqs, system.physical_id(logical_id)):
            if body.get("notification_id") in notifications:
                parked[body["notification_id"]].append({**body, "queue": logical_id})
    return Evidence(
        notifications=notifications,
        contacts=contacts,
        stripe=stripe,
        stripe_requests=sandboxes["stripe"].control.requests("/v1/"),
        sendgrid_mails=mails,
        sendgrid_requests=sandboxes["sendgrid"].control.requests("/v3/mail/send"),
        twilio_messages=messages,
        twilio_requests=sandboxes["twilio"].control.requests("/2010-04-01"),
        ses_messages=[m for m in aws_emails() if set(m[1]) & emails],
        sns_messages=[m for m in aws_sms() if m[1] in phones],
        histories=histories,
        execution_status=execution_status,
        parked=dict(parked),
    )


def aws_emails() -> list[tuple[str, list[str]]]:
    """Every e-mail moto's SES holds (the local system's moto runs in this process)."""
    from moto.ses.models import ses_backends

    from tidings_local.stack.template import ACCOUNT_ID, REGION

    sent = []
    for message in ses_backends[ACCOUNT_ID][REGION].sent_messages:
        destinations = getattr(message, "destinations", None) or {}
        if isinstance(destinations, dict):
            recipients = [
                a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(key, [])
            ]
        else:
            recipients = list(destinations)
        sent.append((str(message.id), [_address(recipient) for recipient in recipients]))
    return sent


def _address(recipient: str) -> str:
    """``Name <address>`` (how the layer names the recipient) or a bare address: the address."""
    recipient = recipient.strip()
    if recipient.endswith(">") and "<" in recipient:
        return recipient[recipient.rindex("<") + 1 : -1]
    return recipient


def aws_sms() -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    from tidings_local.stack.template import ACCOUNT_ID, REGION

    return [(mid, phone) for mid, (phone, _) in sns_backends[ACCOUNT_ID][REGION].sms_messages.items()]


def attempts_from_history(events: list[dict[str, Any]]) -> dict[str, int]:
    attempts: Counter[str] = Counter()
    current = None
    for event in events:
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] in ("TaskScheduled", "LambdaFunctionScheduled") and current:
            attempts[current] += 1
    return dict(attempts)


def peek(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every body on a parking queue, made visible again at once (these queues have no consumer)."""
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    for _ in range(100):
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        batch = answer.get("Messages", [])
        if not batch:
            break
        for message in batch:
            handles.append(message["ReceiptHandle"])
            try:
                found[message["MessageId"]] = json.loads(message["Body"])
            except ValueError:
                found[message["MessageId"]] = {"body": message["Body"]}
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ],
        )
    return list(found.values())


# --- judging -----------------------------------------------------------------------------------


def _send_key_of_callback(url: str | None) -> str | None:
    if not url:
        return None
    return (parse_qs(urlparse(url).query).get("tidings_send_key") or [None])[0]


def _form(request: dict[str, Any]) -> dict[str, Any]:
    return request.get("form") or {}


def judge(evidence: Evidence, policy: Policy, cell: Any) -> dict[str, list[str]]:
    """Problems per notification id (empty list: it passed every check)."""
    verdicts: dict[str, list[str]] = {}
    intents_by_nid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for intent in evidence.stripe.get("payment_intents", []):
        nid = (intent.get("metadata") or {}).get("notification_id")
        if nid:
            intents_by_nid[nid].append(intent)
    refunds_by_intent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for refund in evidence.stripe.get("refunds", []):
        refunds_by_intent[str(refund.get("payment_intent"))].append(refund)
    mails_by_key = Counter(m["custom_args"].get("tidings_send_key") for m in evidence.sendgrid_mails)
    accepted_sms = [r for r in evidence.twilio_requests if r["method"] == "POST" and r.get("status") == 201]
    sms_by_key = Counter(_send_key_of_callback(_form(r).get("StatusCallback")) for r in accepted_sms)
    rate_limited = "429" in cell.fault
    in_call = policy.rate_limited_attempts if rate_limited else policy.transient_attempts

    for nid, notification in evidence.notifications.items():
        problems: list[str] = []
        email, phone = evidence.contacts[nid]
        status = notification["status"]
        timeline = notification.get("timeline") or []

        # final: one status, the execution over, one the cell allows
        if status not in CHARGED | NEEDS_REASON | {"delivered", "delivered_with_fallback"}:
            problems.append(f"final: status {status}")
        outcomes = [e for e in timeline if e.get("step") == "RecordOutcome"]
        if len(outcomes) != 1:
            problems.append(f"final: {len(outcomes)} RecordOutcome events")
        # An uncertain charge's saga waits for ReconcilePayment (docs/saga.md): running, on purpose.
        reconciling = notification.get("status_reason") == "charge_outcome_unknown" and any(
            e.get("step") == "AwaitChargeReconciliation" for e in timeline
        )
        if evidence.execution_status.get(nid) == "RUNNING" and not reconciling:
            problems.append("final: execution still running")
        if cell.expect and status not in cell.expect:
            problems.append(f"final: {status}, expected {'/'.join(sorted(cell.expect))}")

        # twice: charges, refunds, e-mails, SMS
        intents = intents_by_nid.get(nid, [])
        succeeded = [pi for pi in intents if pi.get("status") == "succeeded"]
        if len(intents) > 1:
            problems.append(f"twice: {len(intents)} payment intents")
        if len(succeeded) > 1:
            problems.append(f"twice: {len(succeeded)} charges")
        refunds = [r for pi in intents for r in refunds_by_intent.get(pi["id"], [])]
        if len(refunds) > 1:
            problems.append(f"twice: {len(refunds)} refunds")
        sendgrid = [m for m in evidence.sendgrid_mails if email in m["recipients"]]
        ses = [m for m in evidence.ses_messages if email in m[1]]
        if len(sendgrid) + len(ses) > 1:
            problems.append(f"twice: {len(sendgrid)} SendGrid + {len(ses)} SES e-mails")
        for mail in sendgrid:
            key = mail["custom_args"].get("tidings_send_key")
            if key and mails_by_key[key] > 1:
                problems.append(f"twice: send key used by {mails_by_key[key]} e-mails")
        twilio = [m for m in evidence.twilio_messages if m["to"] == phone]
        sns = [m for m in evidence.sns_messages if m[1] == phone]
        if len(twilio) + len(sns) > 1:
            problems.append(f"twice: {len(twilio)} Twilio + {len(sns)} SNS messages")
        keys = {key for r in accepted_sms if (key := _send_key_of_callback(_form(r).get("StatusCallback")))}
        for key in keys:
            if nid in key and sms_by_key[key] > 1:
                problems.append(f"twice: send key used by {sms_by_key[key]} SMS")

        # parked: failures on a queue with a reason; non-delivered statuses explained
        channels = notification.get("channels") or {}
        parked = evidence.parked.get(nid, [])
        for name, channel in channels.items():
            if channel.get("status") == "dead_lettered":
                queue = "EmailDeadLetterQueue" if name == "email" else "SmsDeadLetterQueue"
                mine = [p for p in parked if p["queue"] == queue]
                if not mine:
                    problems.append(f"parked: {name} dead-lettered but not on {queue}")
                elif not any(_reason(p) for p in mine):
                    problems.append(f"parked: {name} on {queue} without a reason")
        if status == "failed" and not any(p["queue"] == "CompensationDeadLetterQueue" for p in parked):
            problems.append("parked: failed but nothing on CompensationDeadLetterQueue")
        explained = notification.get("status_reason") or (status == "partially_delivered" and parked)
        if status in NEEDS_REASON and not explained:
            problems.append(f"parked: {status} without a status_reason")

        # attempts: per state within its Retry policy; provider requests within attempts x in-call
        attempts = evidence.histories.get(nid, {})
        for state, count in attempts.items():
            limit = policy.state_attempts.get(state)
            if limit is not None and count > limit:
                problems.append(f"attempts: {state} ran {count} times, policy allows {limit}")
        requests = {
            "stripe": [
                r
                for r in evidence.stripe_requests
                if r["method"] == "POST"
                and r["path"] == "/v1/payment_intents"
                and ((_form(r).get("metadata") or {}).get("notification_id") == nid)
            ],
            "sendgrid": [
                r
                for r in evidence.sendgrid_requests
                if ((r.get("json") or {}).get("custom_args") or {}).get("notification_id") == nid
            ],
            "twilio": [
                r
                for r in evidence.twilio_requests
                if r["method"] == "POST" and nid in (_form(r).get("StatusCallback") or "")
            ],
        }
        for provider, seen in requests.items():
            runs = sum(attempts.get(state, 0) for state in SEND_STATES[provider])
            if provider != "stripe":
                runs += attempts.get("RetryDelivery", 0) + _redelivery_tries(timeline)
            if len(seen) > max(runs, 1) * in_call:
                problems.append(f"attempts: {len(seen)} {provider} requests for {runs} step runs x {in_call}")

        # timeline: the record matches the providers
        payment = notification.get("payment") or {}
        intent_id = payment.get("payment_intent_id")
        if intent_id and intent_id not in {pi["id"] for pi in intents}:
            problems.append("timeline: payment intent unknown to Stripe")
        if status in CHARGED and len(succeeded) != 1:
            problems.append(f"timeline: {status} but {len(succeeded)} succeeded charges")
        if succeeded and status in {"payment_declined", "payment_not_taken"}:
            problems.append(f"timeline: {status} but Stripe holds a succeeded charge")
        if status == "compensated" and len(refunds) != 1:
            problems.append(f"timeline: compensated but {len(refunds)} refunds")
        if payment.get("refund_id") and payment["refund_id"] not in {r["id"] for r in refunds}:
            problems.append("timeline: refund unknown to Stripe")
        effects = {
            "email": {"sendgrid": [m["message_id"] for m in sendgrid], "ses": [m[0] for m in ses]},
            "sms": {"twilio": [m["sid"] for m in twilio], "sns": [m[0] for m in sns]},
        }
        for name, channel in channels.items():
            held = effects.get(name)
            if held is None:
                continue
            total = sum(len(v) for v in held.values())
            channel_status = channel.get("status")
            if channel_status in SENT:
                provider = channel.get("provider")
                ids = held.get(str(provider), [])
                message_id = str(channel.get("provider_message_id") or "")
                if not any(message_id.startswith(i) or i.startswith(message_id) for i in ids if message_id):
                    problems.append(
                        f"timeline: {name} sent via {provider} but {provider} holds no such message"
                    )
            elif channel_status in NOT_SENT and total:
                problems.append(f"timeline: {name} recorded {channel_status} but {total} sent")
        verdicts[nid] = problems
    return verdicts


def _reason(parked: dict[str, Any]) -> bool:
    return bool(parked.get("error") or parked.get("reason") or parked.get("last_error"))


def _redelivery_tries(timeline: list[dict[str, Any]]) -> int:
    return sum(1 for e in timeline if e.get("step") == "RetryDelivery")


def judge_probe(rig: Any, probe: Any, cell: Any) -> list[str]:
    """The notification sent after an outage healed went through the primary provider again."""
    current = rig.get(probe.notification_id)
    problems = []
    if current["status"] != "delivered":
        problems.append(f"recovery: the probe after the outage ended {current['status']}, not delivered")
    return problems
