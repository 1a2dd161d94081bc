"""Attacks on the local HTTP API's JWT authorizer and route scopes, over real HTTP against the real template.

Each forged, stale or misdirected token is refused with API Gateway's 401 (``{"message":"Unauthorized"}``
and a ``WWW-Authenticate: Bearer ... error="invalid_token"`` challenge); a valid token without the route's
scope gets 403 ``{"message":"Forbidden"}``. Nothing refused reaches a function: no saga starts and the
Stripe sandbox records no request. A client's ``X-Request-Id`` comes back through the gateway, and one
carrying a header injection is 400. One local system serves the whole package (conftest.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from support.e2e import API_TIMEOUT_SECONDS, order_body

from tidings_local.stack.jwt_issuer import JwtIssuer
from tidings_local.stack.system import DEFAULT_TEMPLATE, LocalSystem
from tidings_local.stack.template import parse_yaml

pytestmark = pytest.mark.integration

READ, WRITE, OPS = "notifications/read", "notifications/write", "tidings/ops"

#: Every client route and the one scope it requires (template.yaml, docs/api.md).
ROUTE_SCOPES = {
    "POST /notifications": [WRITE],
    "POST /notifications/bulk": [WRITE],
    "GET /notifications": [READ],
    "GET /notifications/{notification_id}": [READ],
    "GET /notifications/{notification_id}/timeline": [READ],
    "GET /notifications/bulk/{bulk_id}": [READ],
    "POST /notifications/{notification_id}/refund": [WRITE],
    "POST /notifications/{notification_id}/cancel": [WRITE],
    "GET /audit": ["tidings/ops"],
    "GET /suppressions": ["tidings/ops"],
    "POST /suppressions": ["tidings/ops"],
    "DELETE /suppressions/{suppression_id}": ["tidings/ops"],
}

#: A read route whose function answers 404 for an unknown id: reaching it proves the token passed.
READ_PROBE = "/notifications/ntf_doesnotexist"


def _b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(system: LocalSystem, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    assert system.issuer is not None
    claims = {
        "iss": system.issuer.url,
        "sub": "attacker",
        "aud": system.issuer.audience,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scope": f"{READ} {WRITE} {OPS}",
    }
    return {**claims, **overrides}


def _alg_none(system: LocalSystem) -> str:
    assert system.issuer is not None
    header = {"alg": "none", "typ": "JWT", "kid": system.issuer.kid}
    return f"{_b64(header)}.{_b64(_claims(system))}."


def _hs256_with_the_public_key(system: LocalSystem) -> str:
    # The classic confusion: the issuer's public key (anyone can read it from the JWKS) as an HMAC secret.
    assert system.issuer is not None
    public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(system.issuer.jwks["keys"][0]))
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': system.issuer.kid})}.{_b64(_claims(system))}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _foreign_key_same_kid(system: LocalSystem) -> str:
    assert system.issuer is not None
    return JwtIssuer().token(issuer=system.issuer.url, headers={"kid": system.issuer.kid})


def _foreign_key_own_kid(system: LocalSystem) -> str:
    assert system.issuer is not None
    return JwtIssuer().token(issuer=system.issuer.url)


def _later() -> int:
    return int(time.time()) + 3600


#: Each attack: a token the authorizer must refuse with 401.
ATTACKS = {
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_the_public_key,
    "wrong iss": lambda s: s.token(issuer="https://issuer.invalid"),
    "wrong aud": lambda s: s.token(audience="someone-else"),
    "wrong aud with a valid client_id (aud wins)": lambda s: s.token(
        audience="someone-else", client_id=s.issuer.audience
    ),
    "no aud and no client_id": lambda s: s.token(aud=None),
    "expired": lambda s: s.token(expires_in=-60),
    "no exp": lambda s: s.token(exp=None),
    "future nbf": lambda s: s.token(nbf=_later()),
    "future iat": lambda s: s.token(iat=_later()),
    "string exp": lambda s: s.token(exp=str(_later())),
    "string nbf": lambda s: s.token(nbf=str(int(time.time()) - 60)),
    "boolean exp": lambda s: s.token(exp=True),
    "unknown kid": lambda s: s.token(headers={"kid": "not-a-key-of-the-issuer"}),
    "foreign key under the issuer's kid": _foreign_key_same_kid,
    "foreign key under its own kid": _foreign_key_own_kid,
    "tampered payload": lambda s: _tampered(s),
    "not a JWT": lambda s: "not-a-jwt",
}


def _tampered(system: LocalSystem) -> str:
    header, _, signature = system.token(sub="client-a").split(".")
    return f"{header}.{_b64(_claims(system, sub='client-b'))}.{signature}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


def test_every_client_route_names_its_scope_in_the_template_and_is_served_with_it(
    system: LocalSystem,
) -> None:
    declared: dict[str, list[str]] = {}
    open_routes: set[str] = set()
    for resource in parse_yaml(DEFAULT_TEMPLATE.read_text())["Resources"].values():
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            props = event["Properties"]
            key = f"{props['Method'].upper()} {props['Path']}"
            auth = props.get("Auth") or {}
            if auth.get("Authorizer") == "NONE":
                open_routes.add(key)
            elif "AuthorizationScopes" in auth:
                declared[key] = auth["AuthorizationScopes"]
    assert declared == ROUTE_SCOPES
    assert open_routes == {
        "POST /webhooks/stripe",
        "POST /webhooks/sendgrid",
        "POST /webhooks/twilio",
        "GET /swagger",
    }
    served = {f"{c.route.method} {c.route.path}": c.route.scopes for c in system.api._routes}
    for key, scopes in ROUTE_SCOPES.items():
        assert served[key] == scopes


def test_a_valid_token_with_the_scope_reaches_the_function(http: httpx.Client, system: LocalSystem) -> None:
    response = http.get(READ_PROBE, headers=_bearer(system.token(scope=READ)))
    assert response.status_code == 404  # the function's answer: the authorizer let it through


def test_client_id_is_the_audience_when_aud_is_absent(http: httpx.Client, system: LocalSystem) -> None:
    assert system.issuer is not None
    token = system.token(aud=None, client_id=system.issuer.audience, scope=READ)
    assert http.get(READ_PROBE, headers=_bearer(token)).status_code == 404


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_or_invalid_token_is_401_on_a_read_route(
    http: httpx.Client, system: LocalSystem, attack: str
) -> None:
    _assert_unauthorized(http.get(READ_PROBE, headers=_bearer(ATTACKS[attack](system))))


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_or_invalid_token_sends_nothing(
    http: httpx.Client, system: LocalSystem, nothing_happens: None, attack: str
) -> None:
    response = http.post("/notifications", json=order_body(), headers=_bearer(ATTACKS[attack](system)))
    _assert_unauthorized(response)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no header", "empty", "bearer without token", "basic"],
)
def test_a_missing_token_is_401(http: httpx.Client, nothing_happens: None, headers: dict[str, str]) -> None:
    response = http.post("/notifications", json=order_body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_token_may_come_without_the_bearer_prefix(http: httpx.Client, system: LocalSystem) -> None:
    assert http.get(READ_PROBE, headers={"Authorization": system.token(scope=READ)}).status_code == 404


def test_a_read_only_token_cannot_send_and_nothing_is_charged(
    http: httpx.Client, system: LocalSystem, nothing_happens: None
) -> None:
    headers = _bearer(system.token(scope=READ))
    single = http.post("/notifications", json=order_body(), headers=headers)
    assert single.status_code == 403
    assert single.json() == {"message": "Forbidden"}
    assert 'error="insufficient_scope"' in single.headers["www-authenticate"]
    bulk = http.post("/notifications/bulk", json={"notifications": [order_body()]}, headers=headers)
    assert bulk.status_code == 403
    assert bulk.json() == {"message": "Forbidden"}
    # Nor refund or cancel one
    for action in ("refund", "cancel"):
        refused = http.post(f"{READ_PROBE}/{action}", json={}, headers=headers)
        assert refused.status_code == 403
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("scope", [None, OPS, "notifications/admin", "notifications/write2"])
def test_a_token_without_the_write_scope_cannot_send(
    http: httpx.Client, system: LocalSystem, nothing_happens: None, scope: str | None
) -> None:
    response = http.post("/notifications", json=order_body(), headers=_bearer(system.token(scope=scope)))
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


@pytest.mark.parametrize(
    "path",
    ["/notifications", READ_PROBE, f"{READ_PROBE}/timeline", "/notifications/bulk/blk_doesnotexist"],
)
def test_a_write_only_token_cannot_read(http: httpx.Client, system: LocalSystem, path: str) -> None:
    response = http.get(path, headers=_bearer(system.token(scope=WRITE)))
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_an_scp_list_claim_carries_scopes_too(http: httpx.Client, system: LocalSystem) -> None:
    token = system.token(scope=None, scp=[READ])
    assert http.get(READ_PROBE, headers=_bearer(token)).status_code == 404


def test_a_write_token_passes_the_authorizer_to_the_function(
    http: httpx.Client, system: LocalSystem, nothing_happens: None
) -> None:
    # An invalid body: the function's 422 shows the token passed, and nothing is charged.
    response = http.post(
        "/notifications", json={"order_reference": 1}, headers=_bearer(system.token(scope=WRITE))
    )
    assert response.status_code == 422


def test_the_open_routes_need_no_token(http: httpx.Client) -> None:
    assert http.get("/swagger").status_code == 200
    for provider in ("stripe", "sendgrid", "twilio"):
        status = http.post(f"/webhooks/{provider}", content=b"{}").status_code
        assert status not in (401, 403)
        assert status < 500


def _raw_request(system: LocalSystem, head: bytes) -> bytes:
    with socket.create_connection((system.api.host, system.api.port), timeout=API_TIMEOUT_SECONDS) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer {token}\r\n X-Injected: yes",  # obsolete line folding smuggling a header
        b"Bearer {token}\x00X-Injected: yes",
        b"Bearer {token}\rX-Injected: yes",
        b'Bearer x" error="none" X-Injected="yes',
        b"Bearer \xff\xfe{token}X-Injected",
        b"Bearer " + b"A" * 20000 + b"X-Injected",
    ],
    ids=["folded", "nul", "bare cr", "quote", "non-ascii", "oversized"],
)
def test_header_injection_in_the_authorization_header_is_refused_and_not_echoed(
    system: LocalSystem, nothing_happens: None, authorization: bytes
) -> None:
    token = system.token(scope=READ).encode()
    body = json.dumps(order_body()).encode()
    head = (
        b"POST /notifications HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Authorization: " + authorization.replace(b"{token}", token) + b"\r\n\r\n" + body
    )
    answer = _raw_request(system, head)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500
    head_part = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-injected" not in head_part
    assert b"x-injected" not in answer.lower()


def test_a_clients_request_id_comes_back_through_the_gateway(http: httpx.Client, system: LocalSystem) -> None:
    headers = {**_bearer(system.token(scope=READ)), "X-Request-Id": "client-7:req.42"}
    response = http.get(READ_PROBE, headers=headers)
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "client-7:req.42"


def test_a_gateways_request_id_is_returned_when_the_client_sends_none(
    http: httpx.Client, system: LocalSystem
) -> None:
    response = http.get(READ_PROBE, headers=_bearer(system.token(scope=READ)))
    assert response.headers["x-request-id"] == response.headers["apigw-requestid"]


@pytest.mark.parametrize(
    "request_id",
    [
        b"id\r\n X-Injected: yes",
        b"id\x00X-Injected",
        b'id" X-Injected="yes',
        b"\xc3\xa9X-Injected",
        b"A" * 129,
    ],
    ids=["folded", "nul", "quote", "non-ascii", "too long"],
)
def test_header_injection_in_the_request_id_is_400_and_sends_nothing(
    system: LocalSystem, nothing_happens: None, request_id: bytes
) -> None:
    token = system.token(scope=WRITE).encode()
    body = json.dumps(order_body()).encode()
    head = (
        b"POST /notifications HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Authorization: Bearer " + token + b"\r\nX-Request-Id: " + request_id + b"\r\n\r\n" + body
    )
    answer = _raw_request(system, head)
    assert int(answer.split(b" ", 2)[1]) == 400
    assert b"invalid_request_id" in answer
    assert b"x-injected" not in answer.lower()


def test_only_an_ops_token_reads_the_audit_log_and_it_says_who_sent_a_notification(
    http: httpx.Client, system: LocalSystem
) -> None:
    # Given a notification sent through the gateway with the client's own request id
    sent = http.post(
        "/notifications",
        json=order_body(),
        headers=_bearer(system.token()) | {"X-Request-Id": "shop:audit-1"},
    )
    assert sent.status_code == 202
    notification_id = sent.json()["notification_id"]
    query = {"notification_id": notification_id}
    # Then a client's token, even with both notification scopes, is 403 on the audit route
    assert http.get("/audit", params=query, headers=_bearer(system.token())).status_code == 403
    # And an operator's token gets the record: who sent it, with which scopes, under which request id
    answer = http.get("/audit", params=query, headers=_bearer(system.token(scope="tidings/ops")))
    assert answer.status_code == 200
    [record] = answer.json()["records"]
    assert record["action"] == "notifications.create"
    assert record["route"] == "POST /notifications"
    assert record["request_id"] == "shop:audit-1"
    assert record["status"] == 202
    assert set(record["scopes"]) == {WRITE, READ}
    assert record["subject"] == jwt.decode(system.token(), options={"verify_signature": False})["sub"]
