"""Channel choice and the suppression list: the request model, the store, the send steps, the outcome,
the API's refusal and the opt-out signals, on moto tables and provider fakes."""

import json

import boto3
import pytest
from support.notify_api import start_notify_api
from support.saga import create_table_from_template, notification_request

from tidings import errors
from tidings.notifications.models import Notification
from tidings.saga.outcome import OutcomeInput
from tidings.saga.outcome import decide as decide_state
from tidings.suppressions.models import Suppression, SuppressionReason, SuppressionRequest, suppression_id
from tidings.suppressions.service import SuppressionNotFound, SuppressionService
from tidings.suppressions.signals import sendgrid_signals, twilio_signals
from tidings.suppressions.store import InvalidCursor, SuppressionStore

pytestmark = pytest.mark.unit

NID = "11111111-2222-3333-4444-555555555555"
PHONE = "+447700900123"
EMAIL = "ada@example.com"


class Audit:
    def __init__(self):
        self.changes = []

    def record(self, change):
        self.changes.append(change)


@pytest.fixture
def audit():
    return Audit()


@pytest.fixture
def suppressions(aws, audit) -> SuppressionService:
    table = create_table_from_template("SuppressionsTable", "suppressions")
    return SuppressionService(SuppressionStore(table), audit=audit, observe=lambda _change: None)


@pytest.fixture
def steps(steps, suppressions):
    steps.suppressions = lambda: suppressions
    return steps


def create(store, **overrides):
    store.create(Notification.accepted(NID, "client-a", notification_request(**overrides), at=store.now()))
    return NID


def timeline(store):
    return [(event.step, event.outcome, event.details.get("reason")) for event in store.timeline(NID)]


# --- the request ---------------------------------------------------------------------------------
def test_a_request_asks_for_the_channels_whose_content_it_has_and_payment_alone_is_valid():
    assert notification_request().channels == ("email", "sms")
    assert notification_request(sms=None).channels == ("email",)
    assert notification_request(receipt=None, customer={"name": "Ada", "phone": PHONE}).channels == ("sms",)
    assert notification_request(receipt=None, sms=None, customer={"name": "Ada"}).channels == ()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customer": {"name": "Ada", "phone": PHONE}}, "a receipt needs customer.email"),
        ({"customer": {"name": "Ada", "email": EMAIL}}, "an sms needs customer.phone"),
        ({"sms": None, "delivery_policy": {"sms": "required"}}, "delivery_policy.sms is required"),
    ],
)
def test_a_channel_without_its_recipient_or_a_required_channel_not_asked_for_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        notification_request(**overrides)


def test_a_notification_keeps_only_the_channels_asked_for_and_the_saga_input_names_every_one(store):
    create(store, sms=None)
    notification = store.get(NID)
    assert set(notification.channels) == {"email"}
    assert notification.delivery_policy == {"email": "best_effort", "sms": "not_requested"}


# --- the list ---------------------------------------------------------------------------------------
def test_an_address_is_named_by_a_hash_of_channel_and_normalised_address():
    assert suppression_id("email", "Ada@Example.com ") == suppression_id("email", EMAIL)
    assert suppression_id("email", EMAIL) != suppression_id("sms", PHONE)
    assert EMAIL not in suppression_id("email", EMAIL)
    with pytest.raises(ValueError, match=r"E\.164") as refused:
        suppression_id("sms", "not a number")
    assert "not a number" not in str(refused.value)


def test_the_first_reason_stays_and_each_change_that_took_effect_is_audited_once(suppressions, audit):
    assert suppressions.suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio") is True
    assert suppressions.suppress("sms", PHONE, SuppressionReason.TWILIO_21610, "twilio") is False
    view, created = suppressions.add(SuppressionRequest(channel="sms", address=PHONE), actor="ops-1")
    assert (created, view.reason, view.address) == (False, "opt_out", "+44********23")
    assert [(c.action, c.reason, c.source, c.actor) for c in audit.changes] == [
        ("added", "opt_out", "twilio", None)
    ]
    removed = suppressions.remove(suppression_id("sms", PHONE), actor="ops-1")
    assert removed.suppression_id == suppression_id("sms", PHONE)
    assert [(c.action, c.source, c.actor) for c in audit.changes][-1] == ("removed", "operator", "ops-1")
    with pytest.raises(SuppressionNotFound):
        suppressions.remove(suppression_id("sms", PHONE), actor="ops-1")
    # No address in any change the audit log is handed
    assert all(PHONE not in change.model_dump_json() for change in audit.changes)


def test_an_opt_in_lifts_only_what_that_providers_own_signal_put_there(suppressions):
    suppressions.add(SuppressionRequest(channel="sms", address=PHONE), actor="ops-1")
    assert suppressions.lift("sms", PHONE, "twilio") is False
    assert suppressions.find("sms", PHONE) is not None
    suppressions.remove(suppression_id("sms", PHONE), actor="ops-1")
    suppressions.suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio")
    assert suppressions.lift("sms", PHONE, "twilio") is True
    assert suppressions.find("sms", PHONE) is None


def test_the_list_pages_filters_by_channel_and_masks_every_address(suppressions):
    for n in range(3):
        suppressions.suppress("email", f"user{n}@example.com", SuppressionReason.UNSUBSCRIBE, "sendgrid")
    suppressions.suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio")
    first = suppressions.list("email", limit=2)
    rest = suppressions.list("email", limit=2, cursor=first.next_cursor)
    items = first.items + rest.items
    assert len(items) == 3
    assert {item.channel for item in items} == {"email"}
    assert all(item.address.startswith("u***@") for item in items)
    with pytest.raises(InvalidCursor):
        suppressions.list(cursor="bm90LWEta2V5")


# --- the send steps --------------------------------------------------------------------------------
def test_a_channel_not_asked_for_is_skipped_without_a_provider_call(steps, store, channels):
    create(store, sms=None)
    result = steps.send(NID, "sms", "twilio")
    assert (result.skipped, result.provider) == ("not_requested", None)
    assert channels["twilio"].sent == []
    assert timeline(store) == [("SendSms", "skipped", "not_requested")]
    assert "sms" not in store.get(NID).channels


def test_a_suppressed_best_effort_channel_is_skipped_with_the_reason_and_nothing_sent(
    steps, store, channels, suppressions
):
    create(store)
    suppressions.suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio")
    result = steps.send(NID, "sms", "twilio")
    assert result.skipped == "suppressed"
    assert channels["twilio"].sent == []
    assert channels["sns"].sent == []
    channel = store.get(NID).channels["sms"]
    assert (channel.status, channel.reason) == ("skipped", "suppressed:opt_out")
    [event] = store.timeline(NID)
    assert (event.step, event.outcome, event.details["reason"]) == ("SendSms", "skipped", "suppressed")
    assert event.details["suppression_id"] == suppression_id("sms", PHONE)
    assert PHONE not in json.dumps(event.model_dump())


def test_a_suppressed_required_channel_escapes_as_recipient_suppressed_for_the_refund(
    steps, store, channels, suppressions
):
    create(store, delivery_policy={"email": "required"})
    suppressions.suppress("email", EMAIL, SuppressionReason.SPAM_REPORT, "sendgrid")
    with pytest.raises(errors.RecipientSuppressed) as raised:
        steps.send(NID, "email", "sendgrid")
    assert raised.value.to_dict() == {
        "error_type": "RecipientSuppressed",
        "channel": "email",
        "reason": "spamreport",
    }
    assert channels["sendgrid"].sent == []


def test_twilios_21610_suppresses_the_number_and_skips_the_sms_without_falling_back(
    steps, store, channels, suppressions
):
    create(store)
    channels["twilio"].failures = [
        errors.InvalidRequest("unsubscribed", provider="twilio", status=400, code="21610", field="To")
    ]
    result = steps.send(NID, "sms", "twilio")
    assert result.skipped == "suppressed"
    assert suppressions.find("sms", PHONE).reason == "twilio_21610"
    assert store.get(NID).channels["sms"].reason == "suppressed:twilio_21610"
    [event] = store.timeline(NID)
    assert (event.outcome, event.provider, event.details["code"]) == ("skipped", "twilio", "21610")
    # The next notification to the number never reaches Twilio
    channels["twilio"].failures = []
    assert steps.send(NID, "sms", "twilio").skipped == "suppressed"
    assert channels["twilio"].sent == []


# --- the outcome --------------------------------------------------------------------------------------
CHARGED = {"ChargePaymentResult": {"status": "succeeded", "payment_intent_id": "pi_1"}}
SENT = {"provider": "x", "provider_message_id": "m", "deduplicated": False, "skipped": None}


def decide(state):
    return decide_state(OutcomeInput.model_validate({"notification_id": NID, **state}))


def skipped(reason):
    return {"provider": None, "provider_message_id": None, "deduplicated": False, "skipped": reason}


def test_a_channel_not_asked_for_counts_for_nothing_and_payment_alone_is_delivered():
    email_only = {"email": "best_effort", "sms": "not_requested"}
    state = {"delivery_policy": email_only, **CHARGED, "SendReceiptEmailResult": SENT}
    outcome = decide(state | {"SendSmsResult": skipped("not_requested")})
    assert (outcome.status, outcome.reason, set(outcome.channels)) == ("delivered", None, {"email"})
    nothing = {"email": "not_requested", "sms": "not_requested"}
    assert decide({"delivery_policy": nothing, **CHARGED}).status == "delivered"


def test_a_suppressed_best_effort_channel_is_no_failure_and_the_reason_says_so():
    policy = {"email": "best_effort", "sms": "best_effort"}
    state = {"delivery_policy": policy, **CHARGED, "SendReceiptEmailResult": SENT}
    outcome = decide(state | {"SendSmsResult": skipped("suppressed")})
    assert (outcome.status, outcome.reason) == ("delivered", "sms:suppressed")
    assert (outcome.channels["sms"].status, outcome.channels["sms"].reason) == ("skipped", "suppressed")


def test_a_suppressed_required_channel_compensates_and_keeps_its_skipped_status():
    policy = {"email": "best_effort", "sms": "required"}
    suppressed = {"Error": "RecipientSuppressed", "Cause": "{}"}
    state = {"delivery_policy": policy, **CHARGED, "SendReceiptEmailResult": SENT, "SendSmsError": suppressed}
    outcome = decide(state | {"RefundPaymentResult": {"refund_id": "re_1", "status": "succeeded"}})
    assert (outcome.status, outcome.reason) == ("compensated", "required_sms_suppressed")
    assert outcome.channels["sms"].status == "skipped"


# --- the API -----------------------------------------------------------------------------------------
@pytest.fixture
def api(aws, monkeypatch, suppressions):
    handler = start_notify_api(monkeypatch, SUPPRESSIONS_TABLE="suppressions")
    machine = handler.machine

    from test_saga_notify_api import http_event

    def call(method, path, body=None, query=""):
        event = http_event(method, path, body)
        event["rawQueryString"] = query
        return handler.call(event)

    call.machine = machine
    return call


BODY = {
    "order_reference": "order-3001",
    "customer": {"name": "Ada Lovelace", "email": EMAIL, "phone": PHONE},
    "payment": {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"},
    "receipt": {"subject": "Receipt", "text": "Thank you."},
    "sms": {"text": "Paid, thank you!"},
}


def test_a_required_suppressed_channel_is_refused_with_422_and_nothing_stored_or_started(api, suppressions):
    suppressions.suppress("sms", PHONE, SuppressionReason.OPT_OUT, "twilio")
    status, body = api("POST", "/notifications", BODY | {"delivery_policy": {"sms": "required"}})
    assert status == 422
    assert (body["code"], body["channel"], body["reason"]) == ("recipient_suppressed", "sms", "opt_out")
    assert PHONE not in json.dumps(body)
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=api.machine)["executions"] == []
    assert boto3.resource("dynamodb").Table("notifications").scan()["Items"] == []
    # Best-effort, the same request is accepted: the saga skips the SMS
    status, _body = api("POST", "/notifications", BODY | {"order_reference": "order-3002"})
    assert status == 202


def test_the_operator_routes_add_list_and_remove_with_masked_addresses(api, suppressions):
    status, added = api("POST", "/suppressions", {"channel": "email", "address": "Ada@Example.com"})
    assert (status, added["address"], added["reason"]) == (201, "a***@example.com", "operator")
    assert api("POST", "/suppressions", {"channel": "email", "address": EMAIL})[0] == 200
    status, page = api("GET", "/suppressions", query="channel=email")
    assert status == 200
    assert [item["suppression_id"] for item in page["items"]] == [added["suppression_id"]]
    assert EMAIL not in json.dumps(page)
    assert api("POST", "/suppressions", {"channel": "sms", "address": "12"})[0] == 422
    assert api("DELETE", f"/suppressions/{added['suppression_id']}")[0] == 200
    assert api("DELETE", f"/suppressions/{added['suppression_id']}")[0] == 404


def test_a_suppression_list_that_cannot_be_read_or_written_is_a_typed_503_on_every_operator_route(api):
    # Given the suppression table gone (or refusing)
    boto3.client("dynamodb").delete_table(TableName="suppressions")
    # Then each operator route answers 503 with a machine-readable code, never a 500
    for method, path, body, query in (
        ("GET", "/suppressions", None, ""),
        ("POST", "/suppressions", {"channel": "email", "address": EMAIL}, ""),
        ("DELETE", "/suppressions/sup_" + "0" * 40, None, ""),
    ):
        status, answer = api(method, path, body, query)
        assert status == 503, (method, answer)
        assert answer["code"] == "suppressions_unavailable"
        assert EMAIL not in json.dumps(answer)


# --- the signals -----------------------------------------------------------------------------------------
def test_twilio_stop_and_start_are_read_from_opt_out_type_or_the_default_keywords():
    inbound = {"SmsStatus": ["received"], "From": [PHONE], "MessageSid": ["SM1"]}
    [stop] = twilio_signals(inbound | {"OptOutType": ["STOP"], "Body": ["stop please"]})
    assert (stop.address, stop.action, stop.reason) == (PHONE, "suppress", "opt_out")
    assert twilio_signals(inbound | {"Body": [" unsubscribe "]})[0].action == "suppress"
    assert twilio_signals(inbound | {"OptOutType": ["START"]})[0].action == "lift"
    assert twilio_signals(inbound | {"OptOutType": ["HELP"]}) == []
    assert twilio_signals(inbound | {"Body": ["please stop texting me"]}) == []
    # A status callback is no opt-out, whatever its number
    assert twilio_signals({"MessageStatus": ["delivered"], "From": [PHONE], "Body": ["STOP"]}) == []


def test_sendgrid_unsubscribes_spam_reports_and_hard_bounces_suppress_but_a_block_does_not():
    events = [
        {"event": "unsubscribe", "email": "A@example.com"},
        {"event": "group_unsubscribe", "email": "b@example.com"},
        {"event": "spamreport", "email": "c@example.com"},
        {"event": "bounce", "type": "bounce", "email": "d@example.com"},
        {"event": "bounce", "type": "blocked", "email": "e@example.com"},
        {"event": "delivered", "email": "f@example.com"},
        {"event": "unsubscribe", "email": "not an address"},
    ]
    signals = sendgrid_signals(json.dumps(events).encode())
    assert [(s.address, s.reason) for s in signals] == [
        ("a@example.com", "unsubscribe"),
        ("b@example.com", "group_unsubscribe"),
        ("c@example.com", "spamreport"),
        ("d@example.com", "bounce"),
    ]
    assert sendgrid_signals(b"not json") == []


def test_an_entry_keeps_the_address_in_full_for_the_table_only():
    entry = Suppression.of("sms", PHONE, SuppressionReason.OPT_OUT, "twilio", at="2026-01-01T00:00:00Z")
    assert entry.address == PHONE
