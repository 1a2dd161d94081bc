"""(b) Every sandbox route that stands in for a provider's, called directly, in its success answer and
its error answers, checked against the provider's own description (the status documented, the body its
schema, no undocumented field, every documented field of a resource present).
"""

from __future__ import annotations

import httpx
import pytest
import stripe_contract
from provider_contracts import SENDGRID, TWILIO, exchange_problems, pretty, provider_of, response_problems

from tidings_local.sandboxes import credentials

pytestmark = [pytest.mark.integration, pytest.mark.contract]

ACCOUNT = credentials.TWILIO_ACCOUNT_SID
TW = f"/2010-04-01/Accounts/{ACCOUNT}"

#: The sandbox routes that stand in for a provider's (method, the provider's path template).
SANDBOX_ROUTES = {
    ("POST", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents/{intent}"),
    ("POST", "/v1/payment_intents/{intent}/confirm"),
    ("POST", "/v1/payment_intents/{intent}/cancel"),
    ("POST", "/v1/refunds"),
    ("GET", "/v1/refunds/{refund}"),
    ("GET", "/v1/charges/{charge}"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("POST", "/v3/mail/send"),
    ("GET", "/v3/scopes"),
    ("POST", "/v3/api_keys"),
    ("GET", "/v3/api_keys"),
    ("DELETE", "/v3/api_keys/{api_key_id}"),
    ("POST", "/v3/templates"),
    ("GET", "/v3/templates/{template_id}"),
    ("POST", "/v3/templates/{template_id}/versions"),
    ("GET", "/2010-04-01/Accounts/{Sid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Keys.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Keys.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json"),
    ("DELETE", "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json"),
    ("POST", "/2010-04-01/Accounts/{AccountSid}/Messages.json"),
    ("GET", "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"),
}


def template_of(request: httpx.Request) -> tuple[str, str]:
    provider = provider_of(request)
    if provider == "stripe":
        found = stripe_contract.route(request.method, request.url.path)
        assert found is not None, request.url.path
        pattern = next(p for m, p, n, *_ in stripe_contract.ROUTES if n == found[0] and m == request.method)
        names = {"pi_": "{intent}", "re_": "{refund}", "ch_": "{charge}", "evt_": "{id}"}
        template = pattern.pattern
        for prefix, name in names.items():
            template = template.replace(f"({prefix}\\w+)", name)
        return request.method, template
    op = (TWILIO if provider == "twilio" else SENDGRID).operation(request.method, request.url.path)
    assert op is not None, request.url.path
    return request.method, op.template


def assert_conforms(recorder, provider: str) -> None:
    """Every answer conforms; every route of ``provider`` answered a success at least once; and the
    requests that reached a success were valid ones (so the success answered a documented request)."""
    problems = {}
    for response in recorder.exchanges:
        found = response_problems(response)
        if found:
            problems[f"{response.request.method} {response.request.url.path} {response.status_code}"] = found
    assert problems == {}, pretty(problems)
    answered = {template_of(r.request) for r in recorder.exchanges if r.status_code < 300}
    prefix = {"stripe": "/v1/", "sendgrid": "/v3/", "twilio": "/2010-04-01/"}[provider]
    expected = {route for route in SANDBOX_ROUTES if route[1].startswith(prefix)}
    assert expected <= answered, sorted(expected - answered)
    successes = [r for r in recorder.exchanges if r.status_code < 300]
    assert exchange_problems(successes) == {}, pretty(exchange_problems(successes))


@pytest.fixture
def http(recorder):
    return recorder.client


def stripe_call(http, sandbox, method, path, data=None, key="k-1"):
    headers = {
        "Authorization": f"Bearer {credentials.STRIPE_API_KEY}",
        "Stripe-Version": stripe_contract.API_VERSION,
    }
    if method == "POST":
        headers["Idempotency-Key"] = key
    return http.request(method, sandbox["stripe"].base_url + path, data=data, headers=headers)


def test_stripe_routes_answer_as_stripe_documents(http, recorder, sandbox):
    sandbox["stripe"].control.pause_webhooks()  # its events stay undelivered, for the events list
    intent = stripe_call(
        http,
        sandbox,
        "POST",
        "/v1/payment_intents",
        {"amount": "2599", "currency": "gbp", "payment_method_types[0]": "card", "metadata[order]": "1001"},
        key="create-1",
    ).json()
    assert intent["status"] == "requires_payment_method"
    confirmed = stripe_call(
        http,
        sandbox,
        "POST",
        f"/v1/payment_intents/{intent['id']}/confirm",
        {"payment_method": "pm_card_visa"},
    ).json()
    assert confirmed["status"] == "succeeded"
    stripe_call(http, sandbox, "GET", f"/v1/payment_intents/{intent['id']}")
    listed = stripe_call(http, sandbox, "GET", "/v1/payment_intents?limit=1&created[gte]=0").json()
    assert listed["has_more"] is False
    stripe_call(http, sandbox, "GET", f"/v1/payment_intents?limit=1&starting_after={intent['id']}")
    stripe_call(http, sandbox, "GET", "/v1/payment_intents?limit=500")
    charge = stripe_call(http, sandbox, "GET", f"/v1/charges/{confirmed['latest_charge']}").json()
    assert charge["paid"] is True
    refund = stripe_call(
        http,
        sandbox,
        "POST",
        "/v1/refunds",
        {"payment_intent": intent["id"], "reason": "duplicate"},
        key="r-1",
    ).json()
    stripe_call(http, sandbox, "GET", f"/v1/refunds/{refund['id']}")
    refunded_charge = stripe_call(http, sandbox, "GET", f"/v1/charges/{confirmed['latest_charge']}").json()
    assert refunded_charge["refunded"] is True
    # the events, all of them, and those no endpoint acknowledged (all: webhooks are paused)
    events = stripe_call(http, sandbox, "GET", "/v1/events?limit=100&created[gte]=0").json()
    assert events["data"]
    undelivered = stripe_call(http, sandbox, "GET", "/v1/events?delivery_success=false&limit=100").json()
    assert {e["id"] for e in undelivered["data"]} == {e["id"] for e in events["data"]}
    stripe_call(http, sandbox, "GET", f"/v1/events/{events['data'][0]['id']}")
    stripe_call(
        http, sandbox, "GET", f"/v1/events?types[0]=charge.refunded&starting_after={events['data'][0]['id']}"
    )
    # 3-D Secure: requires_action with a redirect, then cancelled
    waiting = stripe_call(
        http,
        sandbox,
        "POST",
        "/v1/payment_intents",
        {
            "amount": "1000",
            "currency": "eur",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": "true",
            "return_url": "https://shop.example/return",
        },
        key="create-2",
    ).json()
    assert waiting["next_action"]["type"] == "redirect_to_url"
    stripe_call(
        http,
        sandbox,
        "POST",
        f"/v1/payment_intents/{waiting['id']}/cancel",
        {"cancellation_reason": "abandoned"},
        key="c-1",
    )
    # error answers: decline (402), unknown parameter, missing parameter, not found, refund refused,
    # cancelling a finished intent, idempotency key reused with other parameters, no key, bad key
    stripe_call(
        http,
        sandbox,
        "POST",
        "/v1/payment_intents",
        {"amount": "1000", "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": "true"},
        key="create-3",
    )
    stripe_call(
        http, sandbox, "POST", "/v1/payment_intents", {"amount": "1000", "currency": "usd", "colour": "x"}
    )
    stripe_call(http, sandbox, "POST", "/v1/payment_intents", {"currency": "usd"}, key="create-4")
    stripe_call(http, sandbox, "GET", "/v1/payment_intents/pi_missing")
    stripe_call(http, sandbox, "GET", "/v1/refunds/re_missing")
    stripe_call(http, sandbox, "GET", "/v1/charges/ch_missing")
    stripe_call(http, sandbox, "POST", "/v1/refunds", {"payment_intent": intent["id"]}, key="r-2")
    stripe_call(http, sandbox, "POST", f"/v1/payment_intents/{intent['id']}/cancel", {}, key="c-2")
    stripe_call(
        http, sandbox, "POST", "/v1/payment_intents", {"amount": "5000", "currency": "gbp"}, key="create-1"
    )
    http.get(sandbox["stripe"].base_url + f"/v1/payment_intents/{intent['id']}")
    http.get(
        sandbox["stripe"].base_url + f"/v1/payment_intents/{intent['id']}",
        headers={"Authorization": "Bearer sk_test_unknown"},
    )
    # faults the sandbox injects answer with Stripe's error bodies too
    for status in (429, 500, 503):
        sandbox["stripe"].control.inject_fault("status", status=status, count=1)
        stripe_call(http, sandbox, "GET", f"/v1/payment_intents/{intent['id']}")

    seen = {r.status_code for r in recorder.exchanges}
    assert {200, 400, 401, 402, 404, 429, 500, 503} <= seen
    assert_conforms(recorder, "stripe")


def test_sendgrid_routes_answer_as_sendgrid_documents(http, recorder, sandbox):
    base = sandbox["sendgrid"].base_url
    auth = {"Authorization": f"Bearer {credentials.SENDGRID_API_KEY}"}
    mail = {
        "personalizations": [
            {"to": [{"email": "ada@example.com", "name": "Ada"}], "custom_args": {"n": "1"}}
        ],
        "from": {"email": "receipts@shop.example", "name": "Shop"},
        "subject": "Your receipt",
        "content": [
            {"type": "text/plain", "value": "Thanks"},
            {"type": "text/html", "value": "<p>Thanks</p>"},
        ],
    }
    assert http.post(base + "/v3/mail/send", json=mail, headers=auth).status_code == 202
    scopes = http.get(base + "/v3/scopes", headers=auth).json()["scopes"]
    assert "mail.send" in scopes
    created = http.post(
        base + "/v3/api_keys", json={"name": "tidings 1", "scopes": ["mail.send"]}, headers=auth
    ).json()
    listed = http.get(base + "/v3/api_keys", headers=auth).json()["result"]
    assert created["api_key_id"] in {k["api_key_id"] for k in listed}
    limited = {"Authorization": f"Bearer {created['api_key']}"}
    http.get(base + "/v3/scopes", headers=limited)
    assert http.delete(base + f"/v3/api_keys/{created['api_key_id']}", headers=auth).status_code == 204
    template = http.post(
        base + "/v3/templates", json={"name": "receipt", "generation": "dynamic"}, headers=auth
    ).json()
    version = {
        "name": "v1",
        "subject": "Receipt {{{order}}}",
        "html_content": "<p>{{order}}</p>",
        "active": 1,
    }
    http.post(base + f"/v3/templates/{template['id']}/versions", json=version, headers=auth)
    assert http.get(base + f"/v3/templates/{template['id']}", headers=auth).status_code == 200
    templated = {**mail, "template_id": template["id"]}
    templated["personalizations"] = [
        {**mail["personalizations"][0], "dynamic_template_data": {"order": "o-1"}}
    ]
    assert http.post(base + "/v3/mail/send", json=templated, headers=auth).status_code == 202
    # error answers: validation (400), not JSON, no key, unknown key, a key without the scope (403),
    # a key id not found (404), a missing name
    http.post(base + "/v3/mail/send", json={**mail, "from": {"email": "not-an-address"}}, headers=auth)
    http.post(base + "/v3/mail/send", json={"personalizations": []}, headers=auth)
    http.post(
        base + "/v3/mail/send", content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    http.post(base + "/v3/mail/send", json=mail)
    http.post(base + "/v3/mail/send", json=mail, headers={"Authorization": "Bearer SG.unknown.key"})
    scoped = http.post(
        base + "/v3/api_keys", json={"name": "read only", "scopes": ["scopes.read"]}, headers=auth
    )
    http.post(
        base + "/v3/mail/send", json=mail, headers={"Authorization": f"Bearer {scoped.json()['api_key']}"}
    )
    http.delete(base + "/v3/api_keys/doesnotexist", headers=auth)
    http.post(base + "/v3/api_keys", json={"scopes": ["mail.send"]}, headers=auth)
    for status in (429, 500, 503):
        sandbox["sendgrid"].control.inject_fault("status", status=status, count=1)
        http.post(base + "/v3/mail/send", json=mail, headers=auth)

    seen = {r.status_code for r in recorder.exchanges}
    assert {200, 201, 202, 204, 400, 401, 403, 404, 429, 500, 503} <= seen
    assert_conforms(recorder, "sendgrid")


def test_twilio_routes_answer_as_twilio_documents(http, recorder, sandbox):
    base = sandbox["twilio"].base_url
    key_auth = (credentials.TWILIO_API_KEY_SID, credentials.TWILIO_API_KEY_SECRET)
    account_auth = (ACCOUNT, credentials.TWILIO_AUTH_TOKEN)
    http.get(base + f"{TW}.json", auth=key_auth)
    message = http.post(
        base + f"{TW}/Messages.json",
        data={"To": "+447700900123", "From": credentials.TWILIO_FROM_NUMBER, "Body": "Paid"},
        auth=key_auth,
    ).json()
    http.get(base + f"{TW}/Messages/{message['sid']}.json", auth=key_auth)
    key = http.post(base + f"{TW}/Keys.json", data={"FriendlyName": "tidings 1"}, auth=account_auth).json()
    http.get(base + f"{TW}/Keys.json", auth=account_auth)
    http.get(base + f"{TW}/Keys/{key['sid']}.json", auth=account_auth)
    assert http.delete(base + f"{TW}/Keys/{key['sid']}.json", auth=account_auth).status_code == 204
    # error answers: invalid 'To', missing Body, unknown message, no credentials, wrong credentials,
    # a standard key on the Keys resource, a key not found, a name too long
    http.post(
        base + f"{TW}/Messages.json",
        data={"To": "+15005550001", "From": "+15005550006", "Body": "x"},
        auth=key_auth,
    )
    http.post(
        base + f"{TW}/Messages.json", data={"To": "+447700900123", "From": "+15005550006"}, auth=key_auth
    )
    http.get(base + f"{TW}/Messages/SM{'0' * 32}.json", auth=key_auth)
    http.get(base + f"{TW}.json")
    http.get(base + f"{TW}.json", auth=(ACCOUNT, "wrong"))
    http.post(base + f"{TW}/Keys.json", data={"FriendlyName": "x"}, auth=key_auth)
    http.get(base + f"{TW}/Keys/SK{'0' * 31}1.json", auth=account_auth)
    http.post(base + f"{TW}/Keys.json", data={"FriendlyName": "x" * 65}, auth=account_auth)
    for status in (429, 500, 503):
        sandbox["twilio"].control.inject_fault("status", status=status, count=1)
        http.get(base + f"{TW}.json", auth=key_auth)

    seen = {r.status_code for r in recorder.exchanges}
    assert {200, 201, 204, 400, 401, 404, 429, 500, 503} <= seen
    assert_conforms(recorder, "twilio")
