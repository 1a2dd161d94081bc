"""Faults, rate limits and request recording, observed by a real httpx client on every sandbox."""

from __future__ import annotations

import threading
from email.utils import parsedate_to_datetime

import httpx
import pytest
from support.sandboxes import TWILIO_MESSAGES, sendgrid_mail

from tidings_local.sandboxes import SandboxClient, SandboxControlError, credentials

pytestmark = pytest.mark.integration

# One representative call per provider: (path, request kwargs for httpx).
CALLS = {
    "stripe": (
        "/v1/payment_intents",
        {
            "data": {
                "amount": "1000",
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            "headers": {"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"},
        },
        200,
    ),
    "sendgrid": (
        "/v3/mail/send",
        {"json": sendgrid_mail(), "headers": {"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"}},
        202,
    ),
    "twilio": (
        TWILIO_MESSAGES,
        {
            "data": {"To": "+447700900123", "From": credentials.TWILIO_FROM_NUMBER, "Body": "hi"},
            "auth": (credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET),
        },
        201,
    ),
}


@pytest.fixture(params=["stripe", "sendgrid", "twilio"])
def provider(request):
    """(name, sandbox) for each provider in turn."""
    name = request.param
    sandbox = request.getfixturevalue(name)
    return name, sandbox


def call(sandbox, name: str, timeout: float = 5.0) -> httpx.Response:
    path, kwargs, _ = CALLS[name]
    with httpx.Client(base_url=sandbox.base_url, trust_env=False, timeout=timeout) as client:
        return client.post(path, **kwargs)


def ok_status(name: str) -> int:
    return CALLS[name][2]


def assert_provider_error_body(name: str, response: httpx.Response, status: int) -> None:
    body = response.json()
    if name == "stripe":
        assert body["error"]["type"] == ("api_error" if status >= 500 else "invalid_request_error")
        assert response.headers["Request-Id"].startswith("req_")
    elif name == "sendgrid":
        assert body["errors"][0]["field"] is None
        assert body["errors"][0]["message"]
        assert "X-RateLimit-Limit" in response.headers
    else:
        assert body["status"] == status
        assert body["code"] == {429: 20429, 500: 20500, 503: 20503}[status]
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
        assert response.headers["Twilio-Request-Id"].startswith("RQ")


# --- each fault kind ----------------------------------------------------------------------------------


def test_status_burst_answers_n_provider_5xx_then_recovers(provider):
    name, sandbox = provider
    # Given a burst of two 500s
    sandbox.control.inject_fault("status", count=2, status=500)
    # When the client calls three times
    responses = [call(sandbox, name) for _ in range(3)]
    # Then two provider-shaped 500s, then the real answer; the sandbox saw exactly three requests
    assert [r.status_code for r in responses] == [500, 500, ok_status(name)]
    assert_provider_error_body(name, responses[0], 500)
    records = sandbox.control.requests()
    assert [r["fault"] for r in records] == ["status", "status", None]
    assert [r["status"] for r in records] == [500, 500, ok_status(name)]


def test_429_fault_carries_retry_after(provider):
    name, sandbox = provider
    sandbox.control.inject_fault("status", count=1, status=429, retry_after=7)
    response = call(sandbox, name)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert_provider_error_body(name, response, 429)


def test_outage_answers_503_until_cleared(provider):
    name, sandbox = provider
    sandbox.control.inject_fault("outage")
    assert [call(sandbox, name).status_code for _ in range(3)] == [503, 503, 503]
    assert_provider_error_body(name, call(sandbox, name), 503)
    sandbox.control.clear_faults()
    assert call(sandbox, name).status_code == ok_status(name)


def test_reset_closes_the_connection_without_a_response(provider):
    name, sandbox = provider
    sandbox.control.inject_fault("reset", count=1)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        call(sandbox, name)
    # The request was received and recorded, with no status: nothing was answered
    record = sandbox.control.requests()[0]
    assert record["fault"] == "reset"
    assert record["status"] is None
    assert call(sandbox, name).status_code == ok_status(name)


def test_hang_outlasts_the_client_timeout(provider):
    name, sandbox = provider
    # Given a hang far longer than the client's timeout
    sandbox.control.inject_fault("hang", count=1, delay=60)
    # Then the client times out reading, and the next request is served normally
    with pytest.raises(httpx.ReadTimeout):
        call(sandbox, name, timeout=0.3)
    assert call(sandbox, name).status_code == ok_status(name)


def test_latency_beyond_the_client_timeout_times_it_out_and_clearing_releases_it(stripe):
    # Given 60 s of latency on every payment request
    stripe.control.inject_fault("latency", delay=60, path_prefix="/v1/payment_intents")
    # Then a client with a short timeout gives up
    with pytest.raises(httpx.ReadTimeout):
        call(stripe, "stripe", timeout=0.3)
    # And once cleared, a request held by the latency is released and answered
    held: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: held.append(call(stripe, "stripe", timeout=30)))
    worker.start()
    _wait_until(lambda: len(stripe.control.requests()) == 2)
    stripe.control.clear_faults()
    worker.join(timeout=10)
    assert held[0].status_code == 200


def test_fault_targets_only_its_path_prefix(stripe):
    stripe.control.inject_fault("status", status=503, path_prefix="/v1/refunds")
    assert call(stripe, "stripe").status_code == 200
    with httpx.Client(base_url=stripe.base_url, trust_env=False) as client:
        refund = client.post(
            "/v1/refunds",
            data={"payment_intent": "pi_x"},
            headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"},
        )
    assert refund.status_code == 503


def test_faults_fire_in_order_and_are_listed_with_what_remains(stripe):
    stripe.control.inject_fault("status", count=1, status=502)
    stripe.control.inject_fault("status", count=1, status=504)
    assert [call(stripe, "stripe").status_code for _ in range(3)] == [502, 504, 200]
    assert [f["remaining"] for f in stripe.control.faults()] == [0, 0]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 200},
        {"kind": "latency"},
        {"kind": "reset", "count": 0},
    ],
)
def test_invalid_fault_specs_are_refused(stripe, spec):
    kind = spec.pop("kind")
    with pytest.raises(SandboxControlError, match="400"):
        stripe.control.inject_fault(kind, **spec)
    assert stripe.control.faults() == []


# --- rate limiting ----------------------------------------------------------------------------------------


def test_token_bucket_admits_the_burst_then_answers_the_providers_429(provider):
    name, sandbox = provider
    # Given a bucket of 2 that refills very slowly
    sandbox.control.set_rate_limit(per_second=0.01, burst=2)
    # Then two requests pass and the third is rate limited, with Retry-After
    responses = [call(sandbox, name) for _ in range(3)]
    assert [r.status_code for r in responses] == [ok_status(name), ok_status(name), 429]
    assert int(responses[2].headers["Retry-After"]) >= 1
    assert_provider_error_body(name, responses[2], 429)
    if name == "stripe":
        assert responses[2].json()["error"]["code"] == "rate_limit"
    # And turning the limit off lets requests through again
    sandbox.control.set_rate_limit(None)
    assert call(sandbox, name).status_code == ok_status(name)


def test_sendgrid_reports_the_bucket_in_its_rate_limit_headers(sendgrid):
    sendgrid.control.set_rate_limit(per_second=0.01, burst=3)
    responses = [call(sendgrid, "sendgrid") for _ in range(4)]
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["3"] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    # The reset is an epoch second (not a delta), at or after the moment of the response
    reset_at = int(responses[3].headers["X-RateLimit-Reset"])
    assert reset_at >= parsedate_to_datetime(responses[3].headers["Date"]).timestamp()


# --- recording --------------------------------------------------------------------------------------------


def test_requests_are_recorded_with_authorization_redacted(stripe):
    call(stripe, "stripe")
    record = stripe.control.requests("/v1/payment_intents")[0]
    assert record["method"] == "POST"
    assert record["path"] == "/v1/payment_intents"
    assert record["form"]["payment_method"] == "pm_card_visa"
    assert "amount=1000" in record["body"]
    assert record["status"] == 200
    assert record["request_id"].startswith("req_")
    assert credentials.STRIPE_API_KEY not in str(record)
    assert record["headers"]["Authorization"].startswith("Bearer ****")


def test_request_log_filters_by_prefix_counts_and_clears(twilio):
    for _ in range(3):
        call(twilio, "twilio")
    with httpx.Client(base_url=twilio.base_url, trust_env=False) as client:
        client.get("/2010-04-01/Accounts/x/Calls.json")
    assert len(twilio.control.requests()) == 4
    assert len(twilio.control.requests(TWILIO_MESSAGES)) == 3
    assert twilio.control.requests(TWILIO_MESSAGES)[0]["form"]["To"] == "+447700900123"
    twilio.control.clear_requests()
    assert twilio.control.requests() == []


def test_request_counts_tell_each_status_without_the_records(twilio):
    # Given three sends, the third refused by the rate limit, and one other request
    twilio.control.set_rate_limit(per_second=0.01, burst=2)
    for _ in range(3):
        call(twilio, "twilio")
    with httpx.Client(base_url=twilio.base_url, trust_env=False) as client:
        client.get("/2010-04-01/Accounts/x/Calls.json")
    # Then the counts say how many got each status, under a prefix or in all
    assert twilio.control.request_counts(TWILIO_MESSAGES) == {"201": 2, "429": 1}
    assert sum(twilio.control.request_counts().values()) == 4


def test_control_calls_are_never_recorded_faulted_or_limited(sendgrid):
    sendgrid.control.inject_fault("outage")
    sendgrid.control.set_rate_limit(per_second=0.01, burst=1)
    for _ in range(3):
        sendgrid.control.faults()
    assert sendgrid.control.requests() == []


def test_a_separate_client_drives_the_sandbox_over_http(stripe):
    # Given a control client that knows only the URL (as a test in another process would)
    with SandboxClient(stripe.base_url) as remote:
        remote.inject_fault("status", count=1, status=500)
        assert call(stripe, "stripe").status_code == 500
        assert len(remote.requests()) == 1
        remote.reset()
        assert remote.requests() == []
        assert remote.health()["provider"] == "stripe"


def test_reset_forgets_objects_faults_and_limits(stripe):
    call(stripe, "stripe")
    stripe.control.inject_fault("outage")
    stripe.control.set_rate_limit(per_second=0.01, burst=1)
    stripe.control.reset()
    assert stripe.control.state()["payment_intents"] == []
    assert stripe.control.faults() == []
    assert [call(stripe, "stripe").status_code for _ in range(2)] == [200, 200]


def _wait_until(condition, attempts: int = 500) -> None:
    pause = threading.Event()
    for _ in range(attempts):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("condition never became true")
