"""The template's HTTP APIs served on 127.0.0.1, as API Gateway (HTTP API, payload format 2.0) serves them.

Routes, their Lambda integrations and their JWT authorizers come from the transformed template (the
OpenAPI body SAM generates for ``AWS::Serverless::HttpApi`` and HttpApi events), so a route added to the
template is served without a change here. Requests become the 2.0 event; results are mapped back the way
API Gateway maps them (a dict without statusCode is a 200 JSON body, cookies become Set-Cookie, ...).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from tidings.resilience.rate_limit import BucketState, TokenBucket
from tidings_local.stack.deployer import HttpApi, JwtAuthorizer, Route
from tidings_local.stack.lambdas import LambdaRuntime
from tidings_local.stack.template import ACCOUNT_ID

log = logging.getLogger(__name__)

DEFAULT_PORT = 3000  # like `sam local start-api`
STAGE = "$default"  # the only stage SAM gives an HttpApi event's implicit API
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API's request payload quota

_TEXT_TYPES = re.compile(r"^(text/.*|application/(.*\+)?(json|xml|javascript))(;.*)?$", re.IGNORECASE)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent clients (bulk tests) must not be refused

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is routine (timeouts, Ctrl-C); anything else is logged once.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("local API request from %s failed", client_address[0])


@dataclass
class CompiledRoute:
    api: HttpApi
    route: Route
    pattern: re.Pattern[str]
    literal_segments: int
    greedy: bool


def compile_route(api: HttpApi, route: Route) -> CompiledRoute:
    parts, literals, greedy = [], 0, False
    for segment in route.path.strip("/").split("/"):
        match = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
        if match and match.group(2):
            parts.append(f"(?P<{_group(match.group(1))}>.+)")
            greedy = True
        elif match:
            parts.append(f"(?P<{_group(match.group(1))}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literals += 1
    pattern = re.compile("^/" + "/".join(parts) + "/?$")
    return CompiledRoute(api, route, pattern, literals, greedy)


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def match_route(
    routes: list[CompiledRoute], method: str, path: str
) -> tuple[CompiledRoute, dict[str, str]] | None:
    """The most specific route, as API Gateway picks: literal segments before {param} before {proxy+}."""
    best: tuple[tuple[int, int], CompiledRoute, dict[str, str]] | None = None
    for compiled in routes:
        if compiled.route.method != method:
            continue
        found = compiled.pattern.match(path)
        if not found:
            continue
        params = {_param_name(compiled, k): urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        rank = (0 if compiled.greedy else 1, compiled.literal_segments)
        if best is None or rank > best[0]:
            best = (rank, compiled, params)
    return None if best is None else best[1:]


def _param_name(compiled: CompiledRoute, group: str) -> str:
    for segment in compiled.route.path.strip("/").split("/"):
        match = re.fullmatch(r"\{([^}+]+)\+?\}", segment)
        if match and _group(match.group(1)) == group:
            return match.group(1)
    return group


class Unauthorized(Exception):
    """401: no token, or a token the authorizer does not accept; the text is API Gateway's description."""


class Forbidden(Exception):
    """403: a valid token without a scope the route requires."""


#: The algorithms an HTTP API JWT authorizer verifies (RSA only); the key's own ``alg`` narrows it further.
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512")


def _is_number(value: Any) -> bool:
    # JSON numbers only: a string "exp" (which PyJWT would coerce) or a boolean is not a NumericDate.
    return isinstance(value, int | float) and not isinstance(value, bool)


class JwtVerifier:
    """API Gateway's documented JWT authorizer checks, in its order.

    The token is the identity source's value, alone or after ``Bearer``. Its header names an RSA ``alg``
    (never ``none``, never an HMAC one that would take the public key as a secret) and a ``kid`` found in
    the issuer's JWKS, whose ``alg`` it must equal; the signature must verify with that key. Then the
    claims: ``iss`` equals the authorizer's issuer; the audience is ``aud`` when present and ``client_id``
    only when ``aud`` is absent, and must be one of the authorizer's audiences; ``exp`` (required),
    ``nbf`` and ``iat`` are JSON numbers with ``exp`` after now and ``nbf``/``iat`` not after now; and
    the ``scope`` (or ``scp``) claim carries at least one of the route's scopes, else 403.
    """

    def __init__(self) -> None:
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def _jwks_client(self, issuer: str) -> jwt.PyJWKClient:
        with self._lock:
            if issuer not in self._clients:
                discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
                with urllib.request.urlopen(discovery, timeout=5) as response:
                    jwks_uri = json.loads(response.read())["jwks_uri"]
                self._clients[issuer] = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=300)
            return self._clients[issuer]

    def verify(self, authorizer: JwtAuthorizer, headers: dict[str, str], scopes: list[str]) -> dict[str, Any]:
        source = authorizer.identity_source
        header_name = source.split("$request.header.", 1)[-1].lower()
        raw = headers.get(header_name, "").strip()
        if not raw:
            raise Unauthorized("the token is missing")
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else raw
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("the token is malformed") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in _RSA_ALGORITHMS:
            raise Unauthorized("the token uses an unsupported signing algorithm")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token has no key id")
        try:
            key = self._jwks_client(authorizer.issuer).get_signing_key(kid)
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("the token's key id is not in the issuer's key set") from exc
        except (OSError, KeyError, ValueError) as exc:
            raise Unauthorized("the issuer's key set could not be read") from exc
        if (key.algorithm_name or alg) != alg:
            raise Unauthorized("the token's algorithm is not its key's")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                options={
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("the token has an invalid signature") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("the token is malformed") from exc
        self._check_claims(authorizer, claims)
        if scopes and not set(scopes) & set(_scopes(claims)):
            raise Forbidden(f"expected scopes: [{' '.join(scopes)}]")
        return claims

    @staticmethod
    def _check_claims(authorizer: JwtAuthorizer, claims: dict[str, Any]) -> None:
        if claims.get("iss") != authorizer.issuer:
            raise Unauthorized("the token does not have a valid issuer")
        if "aud" in claims:
            audience = claims["aud"]
            audiences = [audience] if isinstance(audience, str) else audience
        else:
            audiences = [claims.get("client_id")]
        if not isinstance(audiences, list) or not any(
            isinstance(a, str) and a in authorizer.audience for a in audiences
        ):
            raise Unauthorized("the token does not have a valid audience")
        now = time.time()
        for name in ("exp", "nbf", "iat"):
            if name in claims and not _is_number(claims[name]):
                raise Unauthorized(f"the token's {name} claim is not a number")
        if "exp" not in claims:
            raise Unauthorized("the token has no exp claim")
        if claims["exp"] <= now:
            raise Unauthorized("the token has expired")
        if "nbf" in claims and claims["nbf"] > now:
            raise Unauthorized("the token is not valid yet")
        if "iat" in claims and claims["iat"] > now:
            raise Unauthorized("the token was issued in the future")


def _scopes(claims: dict[str, Any]) -> list[str]:
    # API Gateway reads ``scope`` (space-separated) or else ``scp`` (a list, or space-separated).
    value = claims["scope"] if "scope" in claims else claims.get("scp", [])
    if isinstance(value, str):
        return value.split()
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _challenge(scopes: list[str], error: str, description: str) -> str:
    """The ``WWW-Authenticate`` value API Gateway sends with a refused token (descriptions are ours, fixed
    strings: nothing from the request is echoed)."""
    return f'Bearer scope="{" ".join(scopes)}" error="{error}" error_description="{description}"'


def _claim_text(value: Any) -> str:
    # API Gateway passes every claim as a string; arrays look like "[a b]".
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class RouteThrottles:
    """The stage's throttling, as API Gateway applies it: a token bucket per route (RouteSettings, else
    DefaultRouteSettings), ``rate`` requests per second up to ``burst``. In memory: one local gateway."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._state: dict[tuple[str, str], BucketState] = {}
        self._lock = threading.Lock()

    def admit(self, api: HttpApi, route_key: str) -> bool:
        throttle = api.route_throttles.get(route_key) or api.default_throttle
        if throttle is None:
            return True
        bucket = TokenBucket(rate=throttle.rate, capacity=float(throttle.burst))
        key = (api.api_id, route_key)
        with self._lock:
            now = self.clock()
            decision = bucket.take(self._state.get(key), now)
            if decision.admitted:
                self._state[key] = BucketState(decision.tokens_left, now)
            return decision.admitted


class LocalHttpApi:
    """Binds at construction (so its URL is known before deploy); ``serve`` starts answering."""

    def __init__(self, runtime: LambdaRuntime, host: str = "127.0.0.1", port: int = 0) -> None:
        self.runtime = runtime
        self.verifier = JwtVerifier()
        self._routes: list[CompiledRoute] = []
        self._throttles = RouteThrottles()
        self._server = _Server((host, port), self._handler_class())
        self.host, self.port = host, self._server.server_address[1]
        self._serving = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_apis(self, apis: list[HttpApi]) -> None:
        self._routes = [compile_route(api, route) for api in apis for route in api.routes]
        self._throttles = RouteThrottles()

    @property
    def routes(self) -> list[str]:
        return [_route_key(r.route) for r in self._routes]

    def serve(self) -> LocalHttpApi:
        threading.Thread(target=self._server.serve_forever, name="local-http-api", daemon=True).start()
        self._serving = True
        return self

    def stop(self) -> None:
        if self._serving:
            self._server.shutdown()
            self._serving = False
        self._server.server_close()

    # --- the HTTP side -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.command, self.path)

            def handle_one(self) -> None:
                api.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one  # noqa: N815

        return Handler

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
        if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
            body = _read_chunked(request.rfile, MAX_PAYLOAD_BYTES)
        else:
            length = int(request.headers.get("Content-Length") or 0)
            body = request.rfile.read(length) if 0 < length <= MAX_PAYLOAD_BYTES else b""
            if length > MAX_PAYLOAD_BYTES:
                body = None
        if body is None:
            request.close_connection = True  # the rest of an oversized body is never read
            self._send(request, 413, {"message": "Request Entity Too Large"}, request_id)
            return
        parsed = urllib.parse.urlsplit(request.path)
        matched = match_route(self._routes, request.command, parsed.path)
        if matched is None:
            self._send(request, 404, {"message": "Not Found"}, request_id)
            return
        compiled, params = matched
        if not self._throttles.admit(compiled.api, _route_key(compiled.route)):
            # As API Gateway: throttled before the authorizer and the function run.
            self._send(request, 429, {"message": "Too Many Requests"}, request_id)
            return
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        authorizer_context = None
        if compiled.route.authorizer:
            authorizer = compiled.api.authorizers.get(compiled.route.authorizer)
            try:
                if authorizer is None:
                    raise Unauthorized(f"authorizer {compiled.route.authorizer} is not supported locally")
                claims = self.verifier.verify(authorizer, headers, compiled.route.scopes)
            except Unauthorized as exc:
                log.debug("request refused by the JWT authorizer: %s", exc)
                challenge = _challenge(compiled.route.scopes, "invalid_token", str(exc))
                self._send(
                    request, 401, {"message": "Unauthorized"}, request_id, {"www-authenticate": challenge}
                )
                return
            except Forbidden as exc:
                challenge = _challenge(compiled.route.scopes, "insufficient_scope", str(exc))
                self._send(
                    request, 403, {"message": "Forbidden"}, request_id, {"www-authenticate": challenge}
                )
                return
            authorizer_context = {
                "jwt": {
                    "claims": {k: _claim_text(v) for k, v in claims.items()},
                    "scopes": _scopes(claims) or None,
                }
            }
        event = self.build_event(
            request, compiled, params, parsed, headers, body, authorizer_context, request_id
        )
        try:
            result = self.runtime.invoke(compiled.route.function_arn, event)
        except Exception:
            log.exception("the integration could not be invoked")
            self._send(request, 503, {"message": "Service Unavailable"}, request_id)
            return
        if result.failed:
            log.debug("integration failed: %s", result.error_type)
            self._send(request, 500, {"message": "Internal Server Error"}, request_id)
            return
        status, out_headers, cookies, payload = map_response(result.json(), result.payload)
        self._send_raw(request, status, out_headers, cookies, payload, request_id)

    def build_event(
        self,
        request: BaseHTTPRequestHandler,
        compiled: CompiledRoute,
        params: dict[str, str],
        parsed: urllib.parse.SplitResult,
        headers: dict[str, str],
        body: bytes,
        authorizer_context: dict[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        route_key = _route_key(compiled.route)
        now = datetime.now(UTC)
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        host = headers.get("host", f"{self.host}:{self.port}")
        headers.setdefault("x-forwarded-for", request.client_address[0])
        headers.setdefault("x-forwarded-port", str(self.port))
        headers.setdefault("x-forwarded-proto", "http")
        content_type = headers.get("content-type", "")
        is_text = bool(_TEXT_TYPES.match(content_type))
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": parsed.path,
            "rawQueryString": parsed.query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": compiled.api.api_id,
                "domainName": host.split(":")[0],
                "domainPrefix": host.split(".")[0].split(":")[0],
                "http": {
                    "method": request.command,
                    "path": parsed.path,
                    "protocol": request.request_version,
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": STAGE,
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if params:
            event["pathParameters"] = params
        if authorizer_context:
            event["requestContext"]["authorizer"] = authorizer_context
        if body:
            if is_text:
                event["body"] = body.decode("utf-8", errors="replace")
            else:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        return event

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        request_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {"content-type": "application/json", **(extra or {})}
        self._send_raw(request, status, headers, [], json.dumps(body).encode(), request_id)

    @staticmethod
    def _send_raw(
        request: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        cookies: list[str],
        payload: bytes,
        request_id: str,
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(name, value)
        for cookie in cookies:
            request.send_header("set-cookie", cookie)
        request.send_header("apigw-requestid", request_id)
        request.send_header("content-length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)


def _read_chunked(stream: Any, limit: int) -> bytes | None:
    """A chunked request body, or None once it grows past ``limit``."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(body)
        if len(body) + size > limit:
            return None
        body += stream.read(size)
        stream.readline()  # the CRLF after each chunk


def _route_key(route: Route) -> str:
    return f"{route.method} {route.path}"


def map_response(result: Any, raw: bytes) -> tuple[int, dict[str, str], list[str], bytes]:
    """API Gateway's mapping of a payload-2.0 Lambda result to an HTTP response."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        headers.setdefault("content-type", "application/json")
        body = result.get("body")
        if body is None:
            payload = b""
        elif result.get("isBase64Encoded"):
            payload = base64.b64decode(body)
        else:
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        return status, headers, [str(c) for c in result.get("cookies") or []], payload
    # No statusCode: the whole result is a JSON body with 200.
    return 200, {"content-type": "application/json"}, [], raw
