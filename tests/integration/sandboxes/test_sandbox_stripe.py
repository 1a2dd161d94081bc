"""The Stripe sandbox answers like api.stripe.com for the PaymentIntents and Refunds Tidings uses."""

from __future__ import annotations

import base64
import re
import threading

import httpx
import pytest

from tidings_local.sandboxes import credentials

pytestmark = pytest.mark.integration

VISA = {"amount": "1999", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def create(http: httpx.Client, key: str | None = None, **params: str) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post("/v1/payment_intents", data={**VISA, **params}, headers=headers)


# --- authentication ---------------------------------------------------------------------------------


def test_missing_key_is_refused_with_stripes_401_body_and_headers(stripe):
    # When a request carries no Authorization header
    response = httpx.post(f"{stripe.base_url}/v1/payment_intents", data=VISA, trust_env=False)
    # Then Stripe's 401: invalid_request_error explaining Bearer auth, a Request-Id, WWW-Authenticate
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")
    assert re.fullmatch(r"req_[A-Za-z0-9]{14}", response.headers["Request-Id"])
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="Stripe"'
    assert stripe.control.state()["payment_intents"] == []


def test_wrong_key_is_refused_and_the_key_is_masked_in_the_message(stripe):
    wrong = "sk_test_wrongwrongwrong1234"
    response = httpx.get(
        f"{stripe.base_url}/v1/payment_intents/pi_x",
        headers={"Authorization": f"Bearer {wrong}"},
        trust_env=False,
    )
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message.startswith("Invalid API Key provided: sk_test_")
    assert message.endswith("1234")
    assert wrong not in message


def test_basic_auth_with_the_key_as_username_is_accepted(stripe):
    token = base64.b64encode(f"{credentials.STRIPE_API_KEY}:".encode()).decode()
    response = httpx.post(
        f"{stripe.base_url}/v1/payment_intents",
        data=VISA,
        headers={"Authorization": f"Basic {token}"},
        trust_env=False,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_a_rotated_key_is_refused_until_the_client_uses_the_new_one(stripe, stripe_http):
    # Given the provider rotated the key
    stripe.control.set_credentials(api_key="sk_test_rotated")
    # Then the old key is refused and the new one accepted
    assert create(stripe_http).status_code == 401
    fresh = httpx.post(
        f"{stripe.base_url}/v1/payment_intents",
        data=VISA,
        headers={"Authorization": "Bearer sk_test_rotated"},
        trust_env=False,
    )
    assert fresh.status_code == 200


# --- payment intents --------------------------------------------------------------------------------


def test_confirmed_visa_payment_succeeds_with_bracket_metadata(stripe_http):
    # When a payment is created and confirmed with metadata in Stripe's bracket notation
    response = create(stripe_http, **{"metadata[notification_id]": "n-1", "description": "order 7"})
    # Then it succeeded, with the metadata decoded into an object and a charge
    assert response.status_code == 200
    intent = response.json()
    assert intent["object"] == "payment_intent"
    assert re.fullmatch(r"pi_[A-Za-z0-9]{24}", intent["id"])
    assert intent["status"] == "succeeded"
    assert intent["amount_received"] == 1999
    assert intent["metadata"] == {"notification_id": "n-1"}
    assert intent["latest_charge"].startswith("ch_")
    assert intent["client_secret"].startswith(f"{intent['id']}_secret_")
    # And the same object comes back on retrieve
    assert stripe_http.get(f"/v1/payment_intents/{intent['id']}").json() == intent


def test_card_number_in_payment_method_data_is_accepted(stripe_http):
    response = stripe_http.post(
        "/v1/payment_intents",
        data={
            "amount": "500",
            "currency": "eur",
            "confirm": "true",
            "payment_method_data[type]": "card",
            "payment_method_data[card][number]": "4242424242424242",
        },
    )
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code", "message"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card", "Your card was declined."),
        (
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "Your card has expired."),
    ],
)
def test_declining_test_cards_answer_402_card_error(stripe_http, payment_method, code, decline_code, message):
    # When a payment with a declining test card is confirmed
    response = create(stripe_http, payment_method=payment_method)
    # Then Stripe's 402 card_error body, carrying the failed intent
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error"
    assert error["code"] == code
    assert error["decline_code"] == decline_code
    assert error["message"] == message
    assert error["charge"].startswith("ch_")
    assert error["request_log_url"].startswith("https://dashboard.stripe.com/test/logs/req_")
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert error["payment_intent"]["last_payment_error"]["decline_code"] == decline_code
    # And the intent Stripe keeps shows the same failure
    intent = stripe_http.get(f"/v1/payment_intents/{error['payment_intent']['id']}").json()
    assert intent["status"] == "requires_payment_method"
    assert intent["payment_method"] is None


def test_declining_card_number_declines_too(stripe_http):
    response = stripe_http.post(
        "/v1/payment_intents",
        data={
            "amount": "500",
            "currency": "usd",
            "confirm": "true",
            "payment_method_data[type]": "card",
            "payment_method_data[card][number]": "4000000000000002",
        },
    )
    assert response.status_code == 402
    assert response.json()["error"]["decline_code"] == "generic_decline"


def test_three_d_secure_card_requires_action_until_the_customer_completes_it(stripe, stripe_http):
    # When a 3-D Secure 2 card is confirmed with a return_url
    response = create(
        stripe_http, payment_method="pm_card_threeDSecure2Required", return_url="https://shop/done"
    )
    # Then the intent waits for the customer with a redirect
    intent = response.json()
    assert response.status_code == 200
    assert intent["status"] == "requires_action"
    assert intent["next_action"]["type"] == "redirect_to_url"
    assert intent["next_action"]["redirect_to_url"]["return_url"] == "https://shop/done"
    # When the customer completes the challenge
    completed = stripe.control.complete_action(intent["id"], "succeeded")
    # Then the payment succeeded
    assert completed["status"] == "succeeded"
    assert stripe_http.get(f"/v1/payment_intents/{intent['id']}").json()["status"] == "succeeded"


def test_three_d_secure_without_return_url_uses_the_sdk_action(stripe_http):
    intent = create(stripe_http, payment_method="pm_card_threeDSecure2Required").json()
    assert intent["status"] == "requires_action"
    assert intent["next_action"]["type"] == "use_stripe_sdk"


def test_failed_three_d_secure_leaves_an_authentication_failure(stripe, stripe_http):
    intent = create(stripe_http, payment_method="pm_card_threeDSecure2Required").json()
    failed = stripe.control.complete_action(intent["id"], "failed")
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_three_d_secure_card_off_session_declines_with_authentication_required(stripe_http):
    response = create(stripe_http, payment_method="pm_card_authenticationRequired", off_session="true")
    assert response.status_code == 402
    assert response.json()["error"]["decline_code"] == "authentication_required"


def test_unconfirmed_intent_can_be_confirmed_then_not_again(stripe_http):
    intent = create(stripe_http, confirm="false").json()
    assert intent["status"] == "requires_confirmation"
    assert stripe_http.post(f"/v1/payment_intents/{intent['id']}/confirm").json()["status"] == "succeeded"
    again = stripe_http.post(f"/v1/payment_intents/{intent['id']}/confirm")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_cancel_a_waiting_intent_but_not_a_succeeded_one(stripe_http):
    waiting = create(stripe_http, payment_method="pm_card_threeDSecure2Required").json()
    canceled = stripe_http.post(
        f"/v1/payment_intents/{waiting['id']}/cancel", data={"cancellation_reason": "abandoned"}
    ).json()
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_reason"] == "abandoned"
    done = create(stripe_http).json()
    refused = stripe_http.post(f"/v1/payment_intents/{done['id']}/cancel")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("params", "status", "code", "param"),
    [
        ({"amount": None}, 400, "parameter_missing", "amount"),
        ({"currency": None}, 400, "parameter_missing", "currency"),
        ({"amount": "ten"}, 400, "parameter_invalid_integer", "amount"),
        ({"amount": "10"}, 400, "amount_too_small", "amount"),
        ({"colour": "blue"}, 400, "parameter_unknown", "colour"),
        ({"payment_method": "pm_nope"}, 400, "resource_missing", "payment_method"),
        ({"receipt_email": "not-an-email"}, 400, "email_invalid", "receipt_email"),
    ],
)
def test_invalid_parameters_answer_400_naming_the_param(stripe, stripe_http, params, status, code, param):
    data = {k: v for k, v in {**VISA, **params}.items() if v is not None}
    response = stripe_http.post("/v1/payment_intents", data=data)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["param"] == param
    assert stripe.control.state()["payment_intents"] == []


def test_unknown_intent_is_404_resource_missing(stripe_http):
    response = stripe_http.get("/v1/payment_intents/pi_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_unknown_url_is_404_unrecognized(stripe_http):
    response = stripe_http.get("/v1/customers")
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/customers)")


# --- idempotency ------------------------------------------------------------------------------------


def test_same_key_same_params_replays_the_first_response_byte_for_byte(stripe, stripe_http):
    # Given a payment made with an idempotency key
    first = create(stripe_http, key="order-7-charge")
    # When the client retries with the same key and parameters
    second = create(stripe_http, key="order-7-charge")
    # Then the very same response comes back, marked as replayed, and only one payment exists
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Original-Request"] == first.headers["Request-Id"]
    assert "Idempotent-Replayed" not in first.headers
    assert len(stripe.control.state()["payment_intents"]) == 1


def test_a_decline_is_replayed_too(stripe, stripe_http):
    first = create(stripe_http, key="k-decline", payment_method="pm_card_chargeDeclined")
    second = create(stripe_http, key="k-decline", payment_method="pm_card_chargeDeclined")
    assert first.status_code == second.status_code == 402
    assert second.content == first.content
    assert len(stripe.control.state()["payment_intents"]) == 1


def test_same_key_different_params_is_an_idempotency_error(stripe_http):
    create(stripe_http, key="k-1")
    response = create(stripe_http, key="k-1", amount="2000")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert error["message"].startswith(
        "Keys for idempotent requests can only be used with the same parameters they were first used with"
    )


def test_same_key_on_another_endpoint_is_an_idempotency_error(stripe_http):
    intent = create(stripe_http, key="k-2").json()
    response = stripe_http.post(
        "/v1/refunds", data={"payment_intent": intent["id"]}, headers={"Idempotency-Key": "k-2"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_a_validation_error_is_not_saved_under_the_key(stripe_http):
    # Given a first attempt refused for a bad parameter
    assert create(stripe_http, key="k-3", amount="ten").status_code == 400
    # Then the key is free for the corrected request
    assert create(stripe_http, key="k-3").status_code == 200


def test_concurrent_request_with_a_key_in_flight_gets_409(stripe, stripe_http):
    # Given a slow first request holding its key
    stripe.control.inject_fault("latency", count=1, delay=30, path_prefix="/v1/payment_intents")
    first: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: first.append(create(stripe_http, key="k-slow")))
    worker.start()
    _wait_until(lambda: stripe.control.faults()[0]["remaining"] == 0)
    # When a second request with the same key arrives meanwhile
    second = create(stripe_http, key="k-slow")
    # Then Stripe's lock answers 409, and the first completes once released
    assert second.status_code == 409
    assert second.json()["error"]["type"] == "idempotency_error"
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    stripe.control.clear_faults()
    worker.join(timeout=10)
    assert first[0].status_code == 200
    assert len(stripe.control.state()["payment_intents"]) == 1


def _wait_until(condition, attempts: int = 500) -> None:
    event = threading.Event()
    for _ in range(attempts):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition never became true")


# --- refunds ----------------------------------------------------------------------------------------


def test_partial_then_full_refund_then_already_refunded(stripe_http):
    intent = create(stripe_http).json()
    partial = stripe_http.post(
        "/v1/refunds", data={"payment_intent": intent["id"], "amount": "999", "metadata[reason]": "late"}
    )
    assert partial.status_code == 200
    refund = partial.json()
    assert refund["object"] == "refund"
    assert refund["status"] == "succeeded"
    assert refund["amount"] == 999
    assert refund["metadata"] == {"reason": "late"}
    assert stripe_http.get(f"/v1/refunds/{refund['id']}").json() == refund

    rest = stripe_http.post("/v1/refunds", data={"payment_intent": intent["id"]}).json()
    assert rest["amount"] == 1000

    again = stripe_http.post("/v1/refunds", data={"payment_intent": intent["id"]})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "charge_already_refunded"


def test_refunding_more_than_the_charge_is_amount_too_large(stripe_http):
    intent = create(stripe_http).json()
    response = stripe_http.post("/v1/refunds", data={"payment_intent": intent["id"], "amount": "5000"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "amount_too_large"
    assert error["param"] == "amount"


def test_refunding_an_unpaid_intent_is_refused(stripe_http):
    declined = create(stripe_http, payment_method="pm_card_chargeDeclined").json()["error"]["payment_intent"]
    response = stripe_http.post("/v1/refunds", data={"payment_intent": declined["id"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "payment_intent"


def test_refund_with_an_idempotency_key_refunds_once(stripe, stripe_http):
    intent = create(stripe_http).json()
    for _ in range(3):
        response = stripe_http.post(
            "/v1/refunds", data={"payment_intent": intent["id"]}, headers={"Idempotency-Key": "refund-1"}
        )
        assert response.status_code == 200
    assert len(stripe.control.state()["refunds"]) == 1
