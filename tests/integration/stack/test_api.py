"""The template's HttpApi routes over real HTTP, with the JWT authorizer checking real RS256 tokens."""

from __future__ import annotations

import base64

import httpx
import pytest

from tidings_local.stack.jwt_issuer import JwtIssuer
from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http(probe_system: LocalSystem):
    with httpx.Client(base_url=probe_system.api_url, timeout=30) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_reaches_the_function_with_a_payload_2_0_event(probe_system: LocalSystem, http) -> None:
    # When an authorised GET hits a route with a path parameter
    response = http.get(
        "/probe/p-42?verbose=1&tag=a&tag=b",
        headers={**_bearer(probe_system.token(sub="client-7")), "X-Custom": "v"},
    )

    # Then the handler's plain dict came back as a 200 JSON body
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["apigw-requestid"]
    event = response.json()["event"]
    # and the event is API Gateway's payload format 2.0
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /probe/{probe_id}"
    assert event["rawPath"] == "/probe/p-42"
    assert event["rawQueryString"] == "verbose=1&tag=a&tag=b"
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "a,b"}
    assert event["pathParameters"] == {"probe_id": "p-42"}
    assert event["headers"]["x-custom"] == "v"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "GET"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["stage"] == "$default"
    claims = context["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "client-7"
    assert claims["iss"] == probe_system.issuer_url
    assert claims["aud"] == "probe-api"


def test_a_missing_token_is_401(http) -> None:
    response = http.get("/probe/p-1")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_a_token_for_another_audience_is_401(probe_system: LocalSystem, http) -> None:
    response = http.get("/probe/p-1", headers=_bearer(probe_system.token(audience="someone-else")))
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_an_expired_token_is_401(probe_system: LocalSystem, http) -> None:
    response = http.get("/probe/p-1", headers=_bearer(probe_system.token(expires_in=-60)))
    assert response.status_code == 401


def test_a_token_signed_by_another_key_is_401(probe_system: LocalSystem, http) -> None:
    # Same iss and aud, but signed with a key the issuer's JWKS does not hold
    forger = JwtIssuer(audience="probe-api")
    token = forger.token(issuer=probe_system.issuer_url)
    assert http.get("/probe/p-1", headers=_bearer(token)).status_code == 401


def test_a_route_requiring_a_scope_is_403_without_it(probe_system: LocalSystem, http) -> None:
    without = http.get("/admin", headers=_bearer(probe_system.token(scope="notifications/read")))
    assert without.status_code == 403
    assert without.json() == {"message": "Forbidden"}
    with_scope = http.get("/admin", headers=_bearer(probe_system.token(scope="probe/admin")))
    assert with_scope.status_code == 200
    assert with_scope.json()["event"]["requestContext"]["authorizer"]["jwt"]["scopes"] == ["probe/admin"]


def test_an_open_route_needs_no_token_and_maps_the_full_response(http) -> None:
    # /open has Auth: {Authorizer: NONE}; the handler returns statusCode, headers, cookies and body
    response = http.post("/open", json={"x": 1})
    assert response.status_code == 201
    assert response.json() == {"created": True}
    assert response.headers["x-probe"] == "yes"
    assert response.headers["set-cookie"] == "session=abc; Path=/"


def test_a_binary_body_arrives_base64_encoded(probe_system: LocalSystem, http) -> None:
    raw = bytes(range(256))
    response = http.request(
        "GET",
        "/probe/bin",
        content=raw,
        headers={**_bearer(probe_system.token()), "Content-Type": "application/octet-stream"},
    )
    event = response.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_unknown_routes_are_404(probe_system: LocalSystem, http) -> None:
    response = http.get("/nowhere", headers=_bearer(probe_system.token()))
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_a_function_error_is_a_500(http) -> None:
    response = http.post("/open", json={"raise": "ProviderUnavailable"})
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_a_body_over_10_mb_is_413(http) -> None:
    response = http.post("/open", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}


def test_execute_api_urls_in_the_template_point_at_the_local_api(probe_system: LocalSystem) -> None:
    assert probe_system.outputs["ProbeApiUrl"] == f"{probe_system.api_url}/probe"


def test_a_chunked_body_reaches_the_function_whole(probe_system: LocalSystem, http) -> None:
    def chunks():
        yield b'{"part": '
        yield b'"one and two"}'

    response = http.request(
        "GET",
        "/probe/chunked",
        content=chunks(),
        headers={**_bearer(probe_system.token()), "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["event"]["body"] == '{"part": "one and two"}'
