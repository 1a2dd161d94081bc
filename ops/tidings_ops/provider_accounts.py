"""The provider side of a deployment: checking credentials, registering webhooks, reading them back.

One small httpx client per provider, used only by the operator's set-up commands (``tidings secrets set``,
``tidings webhooks register``, ``tidings doctor``); the deployed functions go through the layer's
resilience path instead. Every call is one the provider documents, on the base URL the stack was deployed
with (its ``StripeApiBaseUrl`` / ``SendGridApiBaseUrl`` / ``TwilioApiBaseUrl`` parameters, the sandboxes
on the local system):

* credentials, read-only: Stripe ``GET /v1/balance`` (``livemode`` tells a live key from a test key),
  SendGrid ``GET /v3/scopes`` (the key must hold ``mail.send``), Twilio ``GET /Accounts/{Sid}.json`` with
  the API key and again with the auth token, and ``GET IncomingPhoneNumbers.json?PhoneNumber=`` for the
  sender;
* webhooks: Stripe ``/v1/webhook_endpoints`` (the events Tidings handles), SendGrid's Event Webhook
  settings (the delivery events, signing on, the verification key fetched), Twilio's sender number (its
  ``SmsUrl``: where STOP replies go; the status callback URL is sent with every message by the stack).

Nothing here prints or logs a credential: errors name the provider, the call and the HTTP status only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tidings.webhooks.models import SENDGRID_STATUS, STRIPE_PAYMENT_EVENTS
from tidings_ops.target import OperatorError

PROVIDERS = ("stripe", "sendgrid", "twilio")
TIMEOUT_SECONDS = 10.0
#: The stack parameter holding each provider's API base URL.
BASE_URL_PARAMETERS = {
    "stripe": "StripeApiBaseUrl",
    "sendgrid": "SendGridApiBaseUrl",
    "twilio": "TwilioApiBaseUrl",
}
DEFAULT_BASE_URLS = {
    "stripe": "https://api.stripe.com",
    "sendgrid": "https://api.sendgrid.com",
    "twilio": "https://api.twilio.com",
}
#: The Stripe events the webhook processor acts on (tidings.webhooks.models).
STRIPE_EVENTS = tuple(sorted(STRIPE_PAYMENT_EVENTS))
#: The SendGrid Event Webhook flags for the events the processor records (``spamreport`` is the
#: ``spam_report`` flag).
SENDGRID_FLAGS = tuple(sorted("spam_report" if e == "spamreport" else e for e in SENDGRID_STATUS))
SENDGRID_REQUIRED_SCOPE = "mail.send"
SENDGRID_WEBHOOK_SCOPE = "user.webhooks.event.settings.update"
TWILIO_PREFIX = "/2010-04-01/Accounts"


def webhook_url(api_base_url: str, provider: str) -> str:
    return f"{api_base_url.rstrip('/')}/webhooks/{provider}"


class ProviderRefused(OperatorError):
    """The provider answered, and said no (bad key, missing permission, unknown number)."""


@dataclass
class CheckResult:
    """What a read-only credentials check learnt: never a credential, only facts about the account."""

    provider: str
    call: str
    livemode: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Registration:
    """A provider's webhook as registered: where it points, and the signing material to store."""

    provider: str
    url: str
    #: The secret field -> value to store beside the stack's signing keys (never shown).
    signing: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    created: bool = False


class ProviderAccount:
    """One provider's API on ``base_url`` with the credentials given (a JSON secret's fields)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        credentials: Mapping[str, Any],
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if provider not in PROVIDERS:
            raise OperatorError(f"Unknown provider {provider!r}: one of {', '.join(PROVIDERS)}.")
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.credentials = dict(credentials)
        self._transport = transport

    # --- plumbing ---------------------------------------------------------------------------------
    def _http(self, auth: tuple[str, str] | None = None, bearer: str | None = None) -> _Authorised:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        return _Authorised(self.base_url, auth, headers, self._transport)

    def _call(self, client: _Authorised, method: str, path: str, **kwargs: Any) -> Any:
        what = f"{self.provider} {method} {path.split('?')[0]}"
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OperatorError(
                f"Cannot reach {self.provider} at {self.base_url} for {what} ({type(exc).__name__}): "
                f"check the stack's {BASE_URL_PARAMETERS[self.provider]} parameter and the network."
            ) from None
        if response.status_code in (401, 403):
            raise ProviderRefused(
                f"{self.provider} refused the credentials for {what} (HTTP {response.status_code}): "
                f"{_refusal_hint(self.provider, response.status_code)}"
            )
        if response.status_code >= 400:
            raise ProviderRefused(
                f"{what} failed with HTTP {response.status_code}{_provider_message(response)}."
            )
        return response.json() if response.content else {}

    def _field(self, name: str) -> str:
        value = self.credentials.get(name)
        if not value or not isinstance(value, str):
            raise OperatorError(
                f"The {self.provider} secret has no {name}: run `tidings secrets set {self.provider}`."
            )
        return value

    def _stripe(self) -> httpx.Client:
        return self._http(bearer=self._field("api_key"))

    def _sendgrid(self) -> httpx.Client:
        return self._http(bearer=self._field("api_key"))

    def _twilio(self, *, account: bool = False) -> httpx.Client:
        if account:
            return self._http(auth=(self._field("account_sid"), self._field("auth_token")))
        return self._http(auth=(self._field("api_key_sid"), self._field("api_key_secret")))

    # --- credentials ------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """A read-only call proving the credentials work (raises ProviderRefused when they do not)."""
        return {"stripe": self._check_stripe, "sendgrid": self._check_sendgrid, "twilio": self._check_twilio}[
            self.provider
        ]()

    def _check_stripe(self) -> CheckResult:
        with self._stripe() as client:
            balance = self._call(client, "GET", "/v1/balance")
        livemode = bool(balance.get("livemode"))
        return CheckResult("stripe", "GET /v1/balance", livemode=livemode, facts={"livemode": livemode})

    def _check_sendgrid(self) -> CheckResult:
        with self._sendgrid() as client:
            scopes = set(self._call(client, "GET", "/v3/scopes").get("scopes") or [])
        if SENDGRID_REQUIRED_SCOPE not in scopes:
            raise ProviderRefused(
                f"The SendGrid key lacks the {SENDGRID_REQUIRED_SCOPE} scope: give it Mail Send access "
                "(Settings > API Keys) or make a new one."
            )
        result = CheckResult("sendgrid", "GET /v3/scopes", facts={"scopes": len(scopes)})
        if SENDGRID_WEBHOOK_SCOPE not in scopes:
            result.warnings.append(
                f"the key lacks {SENDGRID_WEBHOOK_SCOPE}: `tidings webhooks register` cannot set the "
                "Event Webhook with it"
            )
        return result

    def _check_twilio(self) -> CheckResult:
        sid = self._field("account_sid")
        path = f"{TWILIO_PREFIX}/{sid}.json"
        with self._twilio() as client:
            account = self._call(client, "GET", path)
            number = self._field("from_number")
            listed = self._call(
                client,
                "GET",
                f"{TWILIO_PREFIX}/{sid}/IncomingPhoneNumbers.json",
                params={"PhoneNumber": number},
            ).get("incoming_phone_numbers", [])
        if account.get("status") != "active":
            raise ProviderRefused(f"The Twilio account is {account.get('status')!r}, not active.")
        if not any(n.get("phone_number") == number for n in listed):
            raise ProviderRefused(
                "The Twilio from_number is not one of the account's phone numbers: buy or port it, or give "
                "the account's number."
            )
        with self._twilio(account=True) as client:
            self._call(client, "GET", path)  # the auth token signs status callbacks: it must be current
        return CheckResult(
            "twilio",
            f"GET {TWILIO_PREFIX}/{{Sid}}.json",
            facts={"account_type": str(account.get("type") or ""), "sender_found": True},
        )

    # --- webhooks ---------------------------------------------------------------------------------
    def register(self, url: str, signing_key: str | None = None) -> Registration:
        """Create or update this provider's webhook to ``url``; the signing material comes back.
        ``signing_key`` is the one the stack holds now (Stripe: without it, the endpoint is made again,
        since Stripe answers an endpoint's secret on creation only)."""
        if self.provider == "stripe":
            return self._register_stripe(url, signing_key)
        if self.provider == "sendgrid":
            return self._register_sendgrid(url)
        return self._register_twilio(url)

    def registered(self, url: str) -> Registration | None:
        """The webhook pointing at ``url`` as the provider has it now (None: none does)."""
        return {
            "stripe": self._registered_stripe,
            "sendgrid": self._registered_sendgrid,
            "twilio": self._registered_twilio,
        }[self.provider](url)

    def _stripe_endpoints(self, client: _Authorised) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self._call(client, "GET", "/v1/webhook_endpoints", params=params)
            found.extend(page.get("data") or [])
            if not page.get("has_more") or not found:
                return found
            params["starting_after"] = found[-1]["id"]

    def _registered_stripe(self, url: str) -> Registration | None:
        with self._stripe() as client:
            endpoints = [e for e in self._stripe_endpoints(client) if e.get("url") == url]
        if not endpoints:
            return None
        endpoint = endpoints[0]
        return Registration(
            "stripe",
            url,
            facts={
                "id": endpoint["id"],
                "status": endpoint.get("status"),
                "missing_events": sorted(_missing_events(endpoint.get("enabled_events") or [])),
            },
        )

    def _register_stripe(self, url: str, signing_key: str | None) -> Registration:
        form = {"url": url, **{f"enabled_events[{i}]": e for i, e in enumerate(STRIPE_EVENTS)}}
        with self._stripe() as client:
            existing = [e for e in self._stripe_endpoints(client) if e.get("url") == url]
            if existing and not signing_key:
                # Stripe shows an endpoint's secret only when it is created: without it stored, the
                # endpoint is made again so that its new secret can be kept.
                for endpoint in existing:
                    self._call(client, "DELETE", f"/v1/webhook_endpoints/{endpoint['id']}")
                existing = []
            if existing:
                endpoint = self._call(
                    client,
                    "POST",
                    f"/v1/webhook_endpoints/{existing[0]['id']}",
                    data={**form, "disabled": "false"},
                )
                return Registration("stripe", url, facts={"id": endpoint["id"], "status": endpoint["status"]})
            created = self._call(
                client,
                "POST",
                "/v1/webhook_endpoints",
                data={**form, "description": "Tidings"},
            )
        return Registration(
            "stripe",
            url,
            signing={"webhook_secret": created["secret"]},
            facts={"id": created["id"], "status": created["status"]},
            created=True,
        )

    def _registered_sendgrid(self, url: str) -> Registration | None:
        with self._sendgrid() as client:
            settings = self._call(client, "GET", "/v3/user/webhooks/event/settings")
            signed = self._call(client, "GET", f"/v3/user/webhooks/event/settings/signed/{settings['id']}")
        if settings.get("url") != url:
            return None
        return Registration(
            "sendgrid",
            url,
            signing={"webhook_public_key": signed.get("public_key") or ""},
            facts={
                "id": settings["id"],
                "enabled": bool(settings.get("enabled")),
                "signed": bool(signed.get("public_key")),
                "missing_events": sorted(f for f in SENDGRID_FLAGS if not settings.get(f)),
            },
        )

    def _register_sendgrid(self, url: str) -> Registration:
        with self._sendgrid() as client:
            current = self._call(client, "GET", "/v3/user/webhooks/event/settings")
            webhook_id = current["id"]
            body = {"enabled": True, "url": url, **dict.fromkeys(SENDGRID_FLAGS, True)}
            self._call(client, "PATCH", f"/v3/user/webhooks/event/settings/{webhook_id}", json=body)
            signed = self._call(
                client,
                "PATCH",
                f"/v3/user/webhooks/event/settings/signed/{webhook_id}",
                json={"enabled": True},
            )
        public_key = signed.get("public_key") or ""
        if not public_key:
            raise ProviderRefused("SendGrid did not answer a verification key for the signed Event Webhook.")
        return Registration(
            "sendgrid",
            url,
            signing={"webhook_public_key": public_key},
            facts={"id": webhook_id, "enabled": True, "signed": True},
            created=current.get("url") != url,
        )

    def _twilio_number(self, client: _Authorised) -> dict[str, Any]:
        sid, number = self._field("account_sid"), self._field("from_number")
        listed = self._call(
            client, "GET", f"{TWILIO_PREFIX}/{sid}/IncomingPhoneNumbers.json", params={"PhoneNumber": number}
        ).get("incoming_phone_numbers", [])
        found = [n for n in listed if n.get("phone_number") == number]
        if not found:
            raise ProviderRefused("The Twilio from_number is not one of the account's phone numbers.")
        return found[0]

    def _registered_twilio(self, url: str) -> Registration | None:
        with self._twilio() as client:
            number = self._twilio_number(client)
        if number.get("sms_url") != url:
            return None
        return Registration("twilio", url, facts={"number_sid": number["sid"]})

    def registered_signing(self) -> dict[str, str]:
        """Twilio: the auth token it signs status callbacks and incoming messages with, now."""
        sid = self._field("account_sid")
        with self._twilio(account=True) as client:
            account = self._call(client, "GET", f"{TWILIO_PREFIX}/{sid}.json")
        return {"auth_token": str(account.get("auth_token") or "")}

    def _register_twilio(self, url: str) -> Registration:
        sid = self._field("account_sid")
        with self._twilio() as client:
            number = self._twilio_number(client)
            created = number.get("sms_url") != url
            self._call(
                client,
                "POST",
                f"{TWILIO_PREFIX}/{sid}/IncomingPhoneNumbers/{number['sid']}.json",
                data={"SmsUrl": url, "SmsMethod": "POST"},
            )
        # Twilio signs status callbacks and incoming messages with the account's primary auth token.
        token = self.registered_signing()["auth_token"] or self._field("auth_token")
        return Registration(
            "twilio", url, signing={"auth_token": token}, facts={"number_sid": number["sid"]}, created=created
        )


_shared: httpx.Client | None = None


class _Authorised:
    """Requests to one provider with one set of credentials, over one connection pool for the process
    (a client per call would build a TLS context each time)."""

    def __init__(
        self,
        base_url: str,
        auth: tuple[str, str] | None,
        headers: dict[str, str],
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.base_url, self.auth, self.headers, self.transport = base_url, auth, headers, transport

    def __enter__(self) -> _Authorised:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        global _shared
        if self.transport is not None:
            with httpx.Client(transport=self.transport, timeout=TIMEOUT_SECONDS) as client:
                return client.request(
                    method, self.base_url + path, auth=self.auth, headers=self.headers, **kwargs
                )
        if _shared is None:
            _shared = httpx.Client(timeout=TIMEOUT_SECONDS, headers={"User-Agent": "tidings-ops"})
        return _shared.request(
            method,
            self.base_url + path,
            auth=self.auth or httpx.USE_CLIENT_DEFAULT,
            headers=self.headers,
            **kwargs,
        )


def _missing_events(enabled: list[str]) -> set[str]:
    return set() if "*" in enabled else set(STRIPE_EVENTS) - set(enabled)


def _refusal_hint(provider: str, status: int) -> str:
    if provider == "stripe":
        return "use a secret key (sk_test_... for test mode) from Developers > API keys."
    if provider == "sendgrid":
        return (
            "use an API key from Settings > API Keys with Mail Send access."
            if status == 401
            else ("the key lacks the permission this call needs.")
        )
    return "check the account SID, the API key SID and secret, and the auth token (Console > Account)."


def _provider_message(response: httpx.Response) -> str:
    """The provider's own error message, when it is a short sentence (never echoes a request)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(body.get("errors"), list) and body["errors"]:
            message = (body["errors"][0] or {}).get("message")
        elif isinstance(body.get("message"), str):
            message = body["message"]
    if not isinstance(message, str) or len(message) > 200:
        return ""
    return f": {message}"
