"""SendGrid's v3 Mail Send API and its signed Event Webhook.

POST /v3/mail/send takes the v3 JSON body and answers 202 with an empty body and ``X-Message-Id``;
validation errors come back together as ``{"errors": [{"message", "field"}]}`` as SendGrid's description
(tests/contract/vendor) documents them; its ``help`` is typed there as an object of no stated shape, so the
sandbox leaves it out rather than send the link as a string.
After each accepted mail the sandbox posts ``processed`` then ``delivered`` events (or the outcome set
for a recipient with the bounce control), signed with ECDSA P-256 as SendGrid signs them.

Dynamic templates as SendGrid keeps them (tests/contract/vendor/sendgrid_templates_v3.json):
``POST /v3/templates`` ``{"name", "generation"}`` -> 201 (a dynamic template's id is ``d-`` and 32 hex
digits), ``GET /v3/templates/{template_id}`` (with its versions) and ``POST
/v3/templates/{template_id}/versions`` ``{"name", "subject", "html_content", "plain_content",
"generate_plain_content", "active"}`` -> 201. A mail with ``template_id`` and each personalization's
``dynamic_template_data`` is rendered with the template's active version (Handlebars,
:mod:`tidings_local.sandboxes.handlebars`); the mail the sandbox keeps holds the rendered subject, HTML
and text (``GET /_sandbox/state``). ``PUT /_sandbox/sendgrid/templates/{template_id}`` stores a template
under an id chosen beforehand, standing in for one created in the account before the stack was deployed.

API keys as SendGrid manages them for credential rotation: ``POST /v3/api_keys`` ``{"name", "scopes"}``
-> 201 ``{"api_key": "SG.<id>.<secret>", "api_key_id", "name", "scopes"}`` (the key is shown once),
``GET /v3/api_keys``, ``DELETE /v3/api_keys/{api_key_id}`` (204) and ``GET /v3/scopes`` (the calling
key's scopes). A key made with scopes may only do what they allow (403 otherwise) and may not grant
scopes it lacks; a deleted key no longer authenticates. The documented sandbox key has full access.

The account's Event Webhook as SendGrid's description (tests/contract/vendor) documents it:
``GET``/``PATCH /v3/user/webhooks/event/settings[/{id}]`` (the URL, ``enabled`` and one flag per event
type; without an id, the oldest webhook, which a fresh account has, disabled and without a URL) and
``GET``/``PATCH /v3/user/webhooks/event/settings/signed[/{id}]`` (turning signing on makes a new P-256 key
pair and answers its public key, base64 DER, as SendGrid does; off answers an empty key). Once the webhook
was set through the API, events go to its URL, only the enabled types, signed with its key when signing
is on; before that, to the sandbox's configured URL, signed with the documented key pair.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import time
import uuid
from typing import Any

from tidings_local.sandboxes import credentials, handlebars
from tidings_local.sandboxes.base import Provider, Request, Response, random_hex
from tidings_local.sandboxes.ratelimit import Decision
from tidings_local.sandboxes.webhooks import sendgrid_signature

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
#: SendGrid's documented default for endpoints without a stricter plan limit (per minute).
NOMINAL_RATE_LIMIT = 600
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
OUTCOME_EVENTS = ("delivered", "bounce", "dropped", "deferred", "spamreport")
_OUTCOME_DETAILS: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 2.0.0 OK", "tls": 1, "ip": "149.72.0.1"},
    "bounce": {
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
        "tls": 1,
        "ip": "149.72.0.1",
    },
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "deferred": {"response": "400 try again later", "attempt": "1", "tls": 1, "ip": "149.72.0.1"},
    "spamreport": {},
}


#: What a full-access key reports from GET /v3/scopes (the scopes Tidings and its rotation use).
ALL_SCOPES = (
    "api_keys.create",
    "api_keys.delete",
    "api_keys.read",
    "api_keys.update",
    "mail.send",
    "scopes.read",
    "user.webhooks.event.settings.read",
    "user.webhooks.event.settings.update",
)
#: The Event Webhook's flags, and the event each one sends (``spam_report`` sends ``spamreport``).
EVENT_FLAGS = {
    "processed": "processed",
    "deferred": "deferred",
    "delivered": "delivered",
    "bounce": "bounce",
    "dropped": "dropped",
    "open": "open",
    "click": "click",
    "spam_report": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
    "group_resubscribe": "group_resubscribe",
}
_SETTINGS = re.compile(r"/v3/user/webhooks/event/settings(/signed)?(?:/([^/]+))?")


def _new_event_webhook() -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "id": str(uuid.uuid4()),
        "enabled": False,
        "url": "",
        "account_status_change": False,
        **dict.fromkeys(EVENT_FLAGS, False),
        "friendly_name": "",
        "oauth_client_id": "",
        "oauth_token_url": "",
        "created_date": now,
        "updated_date": now,
        # not shown: the key pair while signing is on, and whether the API ever set this webhook
        "_private_key_pem": None,
        "_public_key": "",
        "_configured": False,
    }


def _webhook_view(webhook: dict[str, Any], *, dates: bool) -> dict[str, Any]:
    shown = {k: v for k, v in webhook.items() if not k.startswith("_")}
    if not dates:
        shown.pop("created_date")
        shown.pop("updated_date")
    return shown


def _p256_key_pair() -> tuple[str, str]:
    """A new private key (PEM) and its public key as SendGrid shows it (base64 DER SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


def _key_part(length: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(length)).decode().rstrip("=")[:length]


def _key_record(name: str | None, scopes: Any, key: str | None = None) -> dict[str, Any]:
    # A SendGrid key reads "SG.<api_key_id>.<secret>": a key set through the control API keeps that id.
    parts = (key or "").split(".")
    return {
        "api_key_id": parts[1] if len(parts) == 3 and parts[0] == "SG" else _key_part(22),
        "name": name or "Tidings sandbox key",
        "scopes": set(scopes) if scopes is not None else None,
    }


def _error(message: str, field: str | None, anchor: str | None = None) -> dict[str, Any]:
    """One error item. ``anchor`` names the section of SendGrid's error reference (HELP) it matches."""
    return {"message": message, "field": field}


def _errors(status: int, *errors: dict[str, Any]) -> Response:
    return Response.json(status, {"errors": list(errors)})


def html_to_text(html_content: str) -> str:
    """SendGrid's ``generate_plain_content``, roughly: blocks and breaks become lines, tags go, entities
    are decoded."""
    text = re.sub(r"(?is)<(head|style|script)\b.*?</\1>", "", html_content)
    text = re.sub(r"(?i)<br\s*/?>|</?(p|div|tr|table|li|h[1-6])\b[^>]*>", "\n", text)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _now() -> str:
    """SendGrid's ``updated_at`` form: ``2021-04-28 13:12:46`` (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _signer(private_key_pem: str | None, body: bytes) -> Any:
    def sign() -> dict[str, str]:
        if private_key_pem is None:
            return {}
        timestamp = int(time.time())
        return {
            "X-Twilio-Email-Event-Webhook-Signature": sendgrid_signature(private_key_pem, body, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        }

    return sign


def _settings_problem(body: Any, *, signed: bool) -> dict[str, Any] | None:
    """The first thing wrong with a PATCH body, as SendGrid's error item; None when it is fine."""
    if not isinstance(body, dict):
        return {"field": None, "message": "invalid JSON body"}
    if signed:
        if not isinstance(body.get("enabled"), bool):
            return {"field": "enabled", "message": "enabled is required and must be a boolean"}
        return None
    if not isinstance(body.get("url"), str):
        return {"field": "url", "message": "url is required"}
    if body["url"] and not re.fullmatch(r"https?://\S+", body["url"]):
        return {"field": "url", "message": "invalid url"}
    for name, value in body.items():
        if name in ("enabled", *EVENT_FLAGS) and not isinstance(value, bool):
            return {"field": name, "message": f"{name} must be a boolean"}
        if name in ("friendly_name", "oauth_client_id", "oauth_client_secret", "oauth_token_url") and not (
            isinstance(value, str) or value is None
        ):
            return {"field": name, "message": f"{name} must be a string"}
    return None


def _message_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22]


class SendGridProvider(Provider):
    name = "sendgrid"
    server_header = "nginx"

    def reset(self) -> None:
        #: key -> {"api_key_id", "name", "scopes"}; scopes None means full access
        self.api_keys: dict[str, dict[str, Any]] = {
            credentials.SENDGRID_API_KEY: _key_record(None, None, credentials.SENDGRID_API_KEY)
        }
        self.webhook_private_key_pem = credentials.SENDGRID_WEBHOOK_PRIVATE_KEY_PEM
        #: recipient (lower-case) -> (outcome event, reason or None)
        self.outcomes: dict[str, tuple[str, str | None]] = {}
        self.mails: list[dict[str, Any]] = []
        #: template id -> {"id", "name", "generation", "updated_at", "versions": [...]}
        self.templates: dict[str, dict[str, Any]] = {}
        #: The account's Event Webhooks, oldest first (a fresh account has one, disabled).
        self.event_webhooks: list[dict[str, Any]] = [_new_event_webhook()]

    def set_credentials(self, values: dict[str, Any]) -> None:
        if "api_key" in values:
            keys = values["api_key"]
            self.api_keys = {
                key: _key_record(None, None) for key in ([keys] if isinstance(keys, str) else keys)
            }
        if "webhook_private_key_pem" in values:
            self.webhook_private_key_pem = str(values["webhook_private_key_pem"])

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "mails": json.loads(json.dumps(self.mails)),
                "event_webhooks": [
                    {**_webhook_view(w, dates=True), "public_key": w["_public_key"]}
                    for w in self.event_webhooks
                ],
            }

    def parse(self, request: Request) -> None:
        if request.body:
            request.json = json.loads(request.body)

    # --- headers and error bodies -----------------------------------------------------------------

    def finalize(self, request: Request, response: Response, decision: Decision | None) -> None:
        limiter = self.sandbox.limiter
        if limiter.enabled:
            state = decision or limiter.peek()
            limit, remaining, reset_at = state.limit, state.remaining, state.reset_at
        else:
            limit, remaining, reset_at = NOMINAL_RATE_LIMIT, NOMINAL_RATE_LIMIT, int(time.time()) + 60
        response.set_header("X-RateLimit-Limit", str(limit))
        response.set_header("X-RateLimit-Remaining", str(remaining))
        response.set_header("X-RateLimit-Reset", str(reset_at))

    def error_response(self, status: int, retry_after: int | None = None) -> Response:
        messages = {
            401: "The provided authorization grant is invalid, expired, or revoked",
            403: "access forbidden",
            404: "resource not found",
            413: "request entity too large",
            429: "too many requests",
            500: "internal error",
            502: "bad gateway",
            503: "service unavailable",
            504: "gateway timeout",
        }
        from http import HTTPStatus

        message = messages.get(status, HTTPStatus(status).phrase.lower())
        response = _errors(status, {"field": None, "message": message})
        if status == 429 or retry_after:
            response.set_header("Retry-After", str(retry_after or 1))
        return response

    def rate_limited(self, decision: Decision) -> Response:
        return self.error_response(429, decision.retry_after)

    def too_large(self) -> Response:
        return _errors(
            413,
            {"field": None, "message": "The request body is larger than the maximum allowed size of 30MB."},
        )

    # --- routes ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        header = request.header("Authorization") or ""
        scheme, _, key = header.partition(" ")
        if not header:
            return _errors(401, {"field": None, "message": "authorization required"})
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.api_keys:
            return self.error_response(401)
        self.sandbox.pause(request)
        if request.path == "/v3/scopes" or request.path.startswith("/v3/api_keys"):
            return self._manage_keys(request, key)
        if request.path.startswith("/v3/templates"):
            with self.lock:
                return self._templates(request)
        if settings := _SETTINGS.fullmatch(request.path):
            with self.lock:
                return self._event_webhook(request, key, signed=bool(settings[1]), webhook_id=settings[2])
        if request.path != "/v3/mail/send":
            return self.error_response(404)
        if not self._allowed(key, "mail.send"):
            return self.error_response(403)
        if request.method != "POST":
            return _errors(405, {"field": None, "message": "method not allowed"})
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _errors(400, _error("Content-Type should be application/json.", None))
        try:
            body = json.loads(request.body)
        except ValueError:
            return _errors(400, {"field": None, "message": "Bad Request"})
        if not isinstance(body, dict):
            return _errors(400, {"field": None, "message": "Bad Request"})
        errors = validate_mail(body)
        with self.lock:
            rendered = self._rendered(body, errors)
        if errors:
            return _errors(400, *errors)
        sandbox_mode = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True
        if sandbox_mode:
            return Response(200)  # SendGrid validates and answers 200 without sending in sandbox mode
        message_id = _message_id()
        with self.lock:
            self._accept(message_id, body, rendered)
        return Response(202, b"", [("X-Message-Id", message_id)])

    # --- dynamic templates --------------------------------------------------------------------------

    def _templates(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")[2:]  # after v3/templates
        body = request.json_body() if request.body else None
        if parts == [] and request.method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
                return _errors(400, _error("missing required argument", "name"))
            generation = body.get("generation", "legacy")
            if generation not in ("legacy", "dynamic"):
                return _errors(400, _error("generation must be legacy or dynamic", "generation"))
            template_id = f"d-{secrets.token_hex(16)}" if generation == "dynamic" else str(uuid.uuid4())
            return Response.json(201, self._store_template(template_id, body["name"][:100], generation))
        template = self.templates.get(parts[0]) if parts else None
        if len(parts) == 1 and request.method == "GET":
            if template is None:
                return _errors(404, _error("resource not found", "template_id"))
            # A template's versions in their lean form (no test data).
            lean = [
                {k: v for k, v in version.items() if k != "test_data"} for version in template["versions"]
            ]
            return Response.json(200, {**template, "versions": lean})
        if len(parts) == 2 and parts[1] == "versions" and request.method == "POST":
            if template is None:
                return _errors(404, _error("resource not found", "template_id"))
            if not isinstance(body, dict):
                return _errors(400, _error("Bad Request", None))
            for name in ("name", "subject"):
                if not isinstance(body.get(name), str) or not body[name]:
                    return _errors(400, _error("missing required argument", name))
            return Response.json(201, self._add_version(template, body))
        return self.error_response(404)  # the template routes Tidings does not use

    def _store_template(self, template_id: str, name: str, generation: str) -> dict[str, Any]:
        template = {
            "id": template_id,
            "name": name,
            "generation": generation,
            "updated_at": _now(),
            "versions": [],
            "warning": {"message": ""},
        }
        self.templates[template_id] = template
        return json.loads(json.dumps(template))

    def _add_version(self, template: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        active = 1 if body.get("active", 1) == 1 else 0
        if active:
            for version in template["versions"]:
                version["active"] = 0
        version = {
            "id": str(uuid.uuid4()),
            "template_id": template["id"],
            "active": active,
            "name": str(body["name"])[:100],
            "subject": str(body["subject"]),
            "html_content": str(body.get("html_content") or ""),
            "plain_content": str(body.get("plain_content") or ""),
            "generate_plain_content": body.get("generate_plain_content", True) is not False,
            "editor": body.get("editor") if body.get("editor") in ("code", "design") else "code",
            "test_data": str(body.get("test_data") or ""),
            "thumbnail_url": "",
            "updated_at": _now(),
        }
        template["versions"].append(version)
        template["updated_at"] = version["updated_at"]
        return {**version, "warnings": []}

    def _rendered(self, body: dict[str, Any], errors: list[dict[str, Any]]) -> list[dict[str, str]] | None:
        """Each personalization's subject, HTML and text from the mail's dynamic template (None: no
        template); a template that is missing or fails to render adds SendGrid's error."""
        template_id = body.get("template_id")
        if not template_id or errors:
            return None
        template = self.templates.get(str(template_id))
        active = [v for v in (template or {}).get("versions", []) if v["active"] == 1]
        if not str(template_id).startswith("d-") or not active:
            errors.append(_error("The template_id is not a valid dynamic template id.", "template_id"))
            return None
        version = active[-1]
        rendered = []
        for personalization in body["personalizations"]:
            data = personalization.get("dynamic_template_data") or {}
            try:
                html = handlebars.render(version["html_content"], data)
                subject = handlebars.render(version["subject"], data)
                if version["plain_content"] and not version["generate_plain_content"]:
                    text = handlebars.render(version["plain_content"], data)
                else:
                    text = html_to_text(html)
            except handlebars.HandlebarsError:
                errors.append(_error("The template could not be rendered.", "template_id"))
                return None
            rendered.append({"subject": subject, "html": html, "text": text})
        return rendered

    # --- API keys ---------------------------------------------------------------------------------

    def _allowed(self, key: str, scope: str) -> bool:
        scopes = self.api_keys[key]["scopes"]
        return scopes is None or scope in scopes

    def _manage_keys(self, request: Request, key: str) -> Response:
        with self.lock:
            if request.path == "/v3/scopes" and request.method == "GET":
                scopes = self.api_keys[key]["scopes"]
                return Response.json(200, {"scopes": sorted(scopes if scopes is not None else ALL_SCOPES)})
            if request.path == "/v3/api_keys" and request.method == "POST":
                if not self._allowed(key, "api_keys.create"):
                    return self.error_response(403)
                return self._create_key(request, key)
            if request.path == "/v3/api_keys" and request.method == "GET":
                if not self._allowed(key, "api_keys.read"):
                    return self.error_response(403)
                result = [{"name": r["name"], "api_key_id": r["api_key_id"]} for r in self.api_keys.values()]
                return Response.json(200, {"result": result})
            match = re.fullmatch(r"/v3/api_keys/([^/]+)", request.path)
            if match is not None and request.method == "DELETE":
                if not self._allowed(key, "api_keys.delete"):
                    return self.error_response(403)
                found = [k for k, r in self.api_keys.items() if r["api_key_id"] == match[1]]
                if not found:
                    return _errors(404, {"field": None, "message": "unable to find API Key"})
                del self.api_keys[found[0]]
                return Response(204)
            if match is not None or request.path in ("/v3/api_keys", "/v3/scopes"):
                return _errors(405, {"field": None, "message": "method not allowed"})
        return self.error_response(404)

    def _create_key(self, request: Request, caller: str) -> Response:
        body = request.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return _errors(400, {"field": "name", "message": "missing required argument"})
        scopes = body.get("scopes")
        if scopes is not None and (
            not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes)
        ):
            return _errors(400, {"field": "scopes", "message": "scopes must be an array of strings"})
        granted = self.api_keys[caller]["scopes"]
        if scopes is not None and granted is not None and not set(scopes) <= granted:
            # SendGrid: a key cannot hand out permissions it does not hold itself.
            return _errors(
                403, {"field": "scopes", "message": "cannot grant scopes the requesting key lacks"}
            )
        record = _key_record(body["name"], scopes if scopes is not None else granted)
        new_key = f"SG.{record['api_key_id']}.{_key_part(43)}"
        self.api_keys[new_key] = record
        listed = sorted(record["scopes"] if record["scopes"] is not None else ALL_SCOPES)
        return Response.json(
            201,
            {
                "api_key": new_key,
                "api_key_id": record["api_key_id"],
                "name": record["name"],
                "scopes": listed,
            },
        )

    # --- the Event Webhook's settings ----------------------------------------------------------------

    def _event_webhook(self, request: Request, key: str, *, signed: bool, webhook_id: str | None) -> Response:
        if request.method not in ("GET", "PATCH"):
            return _errors(405, {"field": None, "message": "method not allowed"})
        scope = "user.webhooks.event.settings." + ("read" if request.method == "GET" else "update")
        if not self._allowed(key, scope):
            return self.error_response(403)
        webhook = (
            next((w for w in self.event_webhooks if w["id"] == webhook_id), None)
            if webhook_id
            else self.event_webhooks[0]
        )
        if webhook is None:
            return _errors(404, {"message": "Invalid id provided."})
        if request.method == "PATCH":
            body = request.json_body()
            problem = _settings_problem(body, signed=signed)
            if problem is not None:
                return _errors(400, problem)
            assert isinstance(body, dict)
            webhook["updated_date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if signed:
                if body["enabled"] and not webhook["_private_key_pem"]:
                    webhook["_private_key_pem"], webhook["_public_key"] = _p256_key_pair()
                elif not body["enabled"]:
                    webhook["_private_key_pem"], webhook["_public_key"] = None, ""
                return Response.json(200, {"id": webhook["id"], "public_key": webhook["_public_key"]})
            for name, value in body.items():
                if name in webhook and name != "id" and not name.startswith("_"):
                    webhook[name] = value
            webhook["_configured"] = True
            return Response.json(200, _webhook_view(webhook, dates=True))
        if signed:
            return Response.json(200, {"id": webhook["id"], "public_key": webhook["_public_key"]})
        shown = _webhook_view(webhook, dates=False)
        if webhook["_public_key"]:
            shown["public_key"] = webhook["_public_key"]
        return Response.json(200, shown)

    def _event_targets(self, events: list[dict[str, Any]]) -> list[tuple[str | None, str | None, bytes]]:
        """(url, private key PEM or None for unsigned, body) per webhook the events go to; url None means
        the sandbox's configured URL, signed with the documented key."""
        configured = [w for w in self.event_webhooks if w["_configured"]]
        if not configured:
            return [(None, self.webhook_private_key_pem, json.dumps(events).encode())]
        targets = []
        for webhook in configured:
            wanted = {EVENT_FLAGS[flag] for flag in EVENT_FLAGS if webhook[flag]}
            chosen = [e for e in events if e["event"] in wanted]
            if webhook["enabled"] and webhook["url"] and chosen:
                targets.append((webhook["url"], webhook["_private_key_pem"], json.dumps(chosen).encode()))
        return targets

    # --- events ---------------------------------------------------------------------------------

    def _accept(self, message_id: str, body: dict[str, Any], rendered: list[dict[str, str]] | None) -> None:
        top_args = {k: str(v) for k, v in (body.get("custom_args") or {}).items()}
        categories = list(body.get("categories") or [])
        recipients: list[dict[str, Any]] = []
        for personalization in body["personalizations"]:
            args = {**top_args, **{k: str(v) for k, v in (personalization.get("custom_args") or {}).items()}}
            for kind in ("to", "cc", "bcc"):
                for address in personalization.get(kind) or []:
                    recipients.append({"email": address["email"], "custom_args": args})
        self.mails.append(
            {
                "message_id": message_id,
                "from": body["from"]["email"],
                "subject": body.get("subject"),
                "recipients": [r["email"] for r in recipients],
                "categories": categories,
                "custom_args": top_args,
                "template_id": body.get("template_id"),
                "content": {c.get("type"): c.get("value") for c in body.get("content") or []},
                "rendered": rendered,
            }
        )
        filter_id = f"filterdrecv-{random_hex(8)}"

        def event(index: int, recipient: dict[str, Any], name: str, extra: dict[str, Any]) -> dict[str, Any]:
            item: dict[str, Any] = {
                **recipient["custom_args"],
                "email": recipient["email"],
                "timestamp": int(time.time()),
                "event": name,
                "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
                "sg_message_id": f"{message_id}.{filter_id}-{index}-0.0",
                "smtp-id": f"<{message_id}@ismtpd0001p1iad2.sendgrid.net>",
                **extra,
            }
            if categories:
                item["category"] = categories
            return item

        def deliver_events() -> None:
            processed = [event(i, r, "processed", {}) for i, r in enumerate(recipients)]
            self._post_events(processed, "processed")
            outcomes = []
            for i, recipient in enumerate(recipients):
                name, reason = self.outcomes.get(recipient["email"].lower(), ("delivered", None))
                extra = dict(_OUTCOME_DETAILS[name])
                if reason:
                    extra["reason"] = reason
                outcomes.append(event(i, recipient, name, extra))
            self._post_events(outcomes, "+".join(sorted({o["event"] for o in outcomes})))

        self.sandbox.webhooks.submit(deliver_events)

    def _post_events(self, events: list[dict[str, Any]], label: str) -> None:
        with self.lock:
            targets = self._event_targets(events)
        for url, private_key_pem, body in targets:
            self.sandbox.webhooks.deliver(
                url=url,
                body=body,
                content_type="application/json",
                sign=_signer(private_key_pem, body),
                event=label,
            )

    def control(self, request: Request, subpath: str) -> Response | None:
        if subpath == "bounces" and request.method == "POST":
            payload = request.json_body() or {}
            email = str(payload.get("email") or "")
            name = payload.get("event") or "bounce"
            if not email or name not in OUTCOME_EVENTS:
                raise ValueError(f"need email and event in {', '.join(OUTCOME_EVENTS)}")
            with self.lock:
                self.outcomes[email.lower()] = (name, payload.get("reason"))
            return Response.json(201, {"email": email, "event": name})
        if subpath.startswith("templates/") and request.method == "PUT":
            payload = request.json_body() or {}
            template_id = subpath.split("/", 1)[1]
            if not re.fullmatch(r"d-[0-9a-f]{32}", template_id):
                raise ValueError("a dynamic template id is d- and 32 hex digits")
            with self.lock:
                self._store_template(template_id, str(payload.get("name") or template_id), "dynamic")
                for version in payload.get("versions") or []:
                    self._add_version(self.templates[template_id], version)
                return Response.json(200, {"id": template_id})
        if subpath == "bounces" and request.method == "DELETE":
            with self.lock:
                self.outcomes.clear()
            return Response.json(200, {"cleared": True})
        return None


def validate_mail(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks SendGrid's v3 mail/send applies, with its messages, fields and help anchors."""
    errors: list[dict[str, Any]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
                "-Personalizations-Errors",
            )
        )
        personalizations = []
    elif len(personalizations) > 1000:
        errors.append(
            _error(
                "The personalizations field must contain 1000 or fewer personalization objects.",
                "personalizations",
                "-Personalizations-Errors",
            )
        )
    every_has_subject = bool(personalizations)
    for i, personalization in enumerate(personalizations):
        if not isinstance(personalization, dict):
            errors.append(_error("Invalid type. Expected: object.", f"personalizations.{i}"))
            every_has_subject = False
            continue
        every_has_subject &= bool(personalization.get("subject"))
        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must have at least one "
                    "email object with a valid email address.",
                    f"personalizations.{i}.to",
                    "message.personalizations.to",
                )
            )
        seen: dict[str, str] = {}
        for kind in ("to", "cc", "bcc"):
            addresses = personalization.get(kind) or []
            for j, address in enumerate(addresses if isinstance(addresses, list) else []):
                email = address.get("email") if isinstance(address, dict) else None
                if not isinstance(email, str) or not _EMAIL.match(email):
                    errors.append(
                        _error(
                            "Does not contain a valid address.",
                            f"personalizations.{i}.{kind}.{j}.email",
                            f"message.personalizations.{kind}",
                        )
                    )
                    continue
                if email.lower() in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be unique between to, "
                            f"cc, and bcc. We found the first duplicate instance of [{email}] in the "
                            f"personalizations.{i}.{kind} field.",
                            f"personalizations.{i}",
                            "message.recipient.errors",
                        )
                    )
                seen[email.lower()] = kind
        errors += _custom_args(personalization.get("custom_args"), f"personalizations.{i}.custom_args")

    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(
            _error(
                "The from object must be provided for every email send. It is an object that requires the "
                'email parameter, but may also contain a name parameter.  e.g. {"email" : '
                '"example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}.',
                "from.email",
                "message.from",
            )
        )
    elif not isinstance(sender["email"], str) or not _EMAIL.match(sender["email"]):
        errors.append(
            _error("The from email does not contain a valid address.", "from.email", "message.from")
        )
    reply_to = body.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, dict) or not _EMAIL.match(str(reply_to.get("email") or ""))
    ):
        errors.append(
            _error(
                "The reply_to email does not contain a valid address.", "reply_to.email", "message.reply_to"
            )
        )

    has_template = bool(body.get("template_id"))
    if not body.get("subject") and not has_template and not every_has_subject:
        errors.append(
            _error(
                "The subject is required. You can get around this requirement if you use a template with a "
                "subject defined or if every personalization has a subject defined.",
                "subject",
                "message.subject",
            )
        )
    errors += _content(body.get("content"), has_template)
    errors += _custom_args(body.get("custom_args"), "custom_args")
    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            errors.append(
                _error("Categories must be an array of strings.", "categories", "message.categories")
            )
        elif len(categories) > 10:
            errors.append(
                _error(
                    "You may not have more than 10 categories per request.",
                    "categories",
                    "message.categories",
                )
            )
        elif any(len(c) > 255 for c in categories):
            errors.append(
                _error("A category cannot be more than 255 characters.", "categories", "message.categories")
            )
    return errors


def _content(content: Any, has_template: bool) -> list[dict[str, Any]]:
    if content is None or content == []:
        if has_template:
            return []
        return [
            _error(
                "Unless a valid template_id is provided, the content parameter is required. There must be at "
                "least one defined content block. We typically suggest both text/plain and text/html blocks "
                "are included, but only one block is required.",
                "content",
                "message.content",
            )
        ]
    if not isinstance(content, list):
        return [_error("Invalid type. Expected: array.", "content", "message.content")]
    errors: list[dict[str, Any]] = []
    types: list[str] = []
    for i, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        kind = block.get("type")
        if not isinstance(kind, str) or not kind or re.search(r"[;\r\n]", kind):
            errors.append(
                _error(
                    "The content type cannot contain ';', or CRLF characters.",
                    f"content.{i}.type",
                    "message.content.type",
                )
            )
        else:
            types.append(kind)
        value = block.get("value")
        if not isinstance(value, str) or not value:
            errors.append(
                _error(
                    "The content value must be a string at least one character in length.",
                    f"content.{i}.value",
                    "message.content.value",
                )
            )
    order = {"text/plain": 0, "text/html": 1}
    ranks = [order.get(t, 2) for t in types]
    if ranks != sorted(ranks):
        errors.append(
            _error(
                "If present, text/plain content must be first, followed by text/html, followed by any other "
                "content.",
                "content",
                "message.content.type",
            )
        )
    return errors


def _custom_args(args: Any, field: str) -> list[dict[str, Any]]:
    if args is None:
        return []
    if not isinstance(args, dict):
        return [_error("Invalid type. Expected: object.", field, "message.custom_args")]
    errors = []
    for key, value in args.items():
        if not isinstance(value, str):
            given = "integer" if isinstance(value, int) else type(value).__name__
            errors.append(
                _error(
                    f"Invalid type. Expected: string, given: {given}.",
                    f"{field}.{key}",
                    "message.custom_args",
                )
            )
    if len(json.dumps(args)) > 10000:
        errors.append(_error("The custom_args total size exceeds 10000 bytes.", field, "message.custom_args"))
    return errors


PROVIDER = SendGridProvider
