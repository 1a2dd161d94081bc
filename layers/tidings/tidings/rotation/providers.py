"""What rotating each provider's secret means.

* Twilio: a new API key (``POST /2010-04-01/Accounts/{Sid}/Keys.json``, made with the account SID and
  auth token, since Twilio refuses standard API keys on that resource), tested with an authenticated
  ``GET /Accounts/{Sid}.json``, and the old key deleted after finishSecret.
* SendGrid: a new API key (``POST /v3/api_keys`` with the configured scopes), tested with
  ``GET /v3/scopes`` (it must hold ``mail.send``), the old key deleted after finishSecret.
* Stripe: secret keys cannot be made through Stripe's API, so ``api_key`` is carried over unchanged
  (operators roll it in the dashboard and ``put-secret-value``; see docs/rotation.md). Optionally
  the webhook signing secret is rolled with a previous-key window (below).

Every rotation also drops a webhook key roll whose ``previous_valid_until`` has passed, and a rolled
webhook key keeps the old one as ``previous_<field>`` until ``now + grace`` (docs/webhooks.md), so no
event signed with the old key is refused during the roll.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from tidings.errors import (
    AuthenticationFailed,
    NetworkError,
    ProviderError,
    ProviderTimeout,
    ResourceNotFound,
)
from tidings.observability import logger, register_secret
from tidings.providers._attempts import AttemptLog
from tidings.rotation.protocol import SecretValue

PREVIOUS_VALID_UNTIL = "previous_valid_until"


# --- webhook key rolls -------------------------------------------------------------------------------


def drop_expired_roll(secret: SecretValue, *, now: float) -> SecretValue:
    """The secret without ``previous_*`` fields once ``previous_valid_until`` has passed (or is missing)."""
    valid_until = secret.get(PREVIOUS_VALID_UNTIL)
    if valid_until is not None and now < float(valid_until):
        return dict(secret)
    return {k: v for k, v in secret.items() if not k.startswith("previous_")}


def roll_webhook_key(
    secret: SecretValue, field: str, new_value: str, *, now: float, grace_seconds: float
) -> SecretValue:
    """``field`` set to ``new_value``; the old value accepted as ``previous_<field>`` until now + grace."""
    rolled = {k: v for k, v in secret.items() if not k.startswith("previous_")}
    if secret.get(field):
        rolled[f"previous_{field}"] = secret[field]
        rolled[PREVIOUS_VALID_UNTIL] = int(now + grace_seconds)
    rolled[field] = new_value
    return rolled


# --- HTTP ----------------------------------------------------------------------------------------------


class ProviderApi:
    """One provider's key-management API over the container's httpx client; errors come back typed.

    Each request is logged and metered per attempt like every provider call (``AttemptLog``), but it
    does not go through the resilience path (``ResilientCaller``), on purpose:

    * creating a key is not idempotent: a retry after a lost answer would make a second live key that
      no secret records, so nothing would ever delete it;
    * Secrets Manager already retries a failed rotation step, and each step is safe to run again
      (``SecretRotator`` keeps the pending version per ``ClientRequestToken``);
    * the shared circuit breaker and token bucket guard the sending path: a management endpoint that
      fails must not open the breaker for receipts and SMS, nor spend their rate.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        http: httpx.Client,
        map_error: Callable[[httpx.Response], ProviderError],
        *,
        timeout: httpx.Timeout,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.map_error = map_error
        self.timeout = timeout

    def call(
        self, method: str, path: str, *, endpoint: str, ok: Sequence[int] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """One request; ``endpoint`` names it in logs and metrics (the path holds account and key ids)."""
        log = AttemptLog(self.provider, endpoint, 1, method=method)
        try:
            response = self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            log.broke(type(exc).__name__)
            raise ProviderTimeout("key management request timed out", provider=self.provider) from None
        except httpx.TransportError as exc:
            log.broke(type(exc).__name__)
            raise NetworkError(
                f"key management request failed: {type(exc).__name__}", provider=self.provider
            ) from None
        if response.status_code not in ok:
            error = self.map_error(response)
            log.failed(error, status=response.status_code)
            raise error
        log.succeeded(status=response.status_code)
        return response


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key_name(prefix: str, token: str, now: float) -> str:
    return f"{prefix} {time.strftime('%Y-%m-%d', time.gmtime(now))} {token[:8]}"


# --- providers -----------------------------------------------------------------------------------------


class TwilioKeyRotation:
    provider = "twilio"

    def __init__(
        self, api: ProviderApi, *, key_name_prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.api = api
        self.key_name_prefix = key_name_prefix
        self.clock = clock

    def _account_auth(self, secret: SecretValue) -> dict[str, str]:
        if not secret.get("auth_token"):
            raise AuthenticationFailed(
                "the secret has no auth_token: Twilio manages API keys only with the account's credentials",
                provider=self.provider,
                code="auth_token_missing",
            )
        return _basic(str(secret["account_sid"]), str(secret["auth_token"]))

    def create(self, current: SecretValue, token: str) -> SecretValue:
        now = self.clock()
        response = self.api.call(
            "POST",
            f"/2010-04-01/Accounts/{current['account_sid']}/Keys.json",
            endpoint="create_key",
            ok=(200, 201),
            headers=self._account_auth(current),
            data={"FriendlyName": _key_name(self.key_name_prefix, token, now)},
        )
        key = response.json()
        register_secret(key["secret"])
        logger.info("twilio api key created", key_sid=key["sid"])
        pending = drop_expired_roll(current, now=now)
        return {**pending, "api_key_sid": key["sid"], "api_key_secret": key["secret"]}

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """Twilio made the key in createSecret: it is already live."""

    def test(self, pending: SecretValue) -> None:
        self.api.call(
            "GET",
            f"/2010-04-01/Accounts/{pending['account_sid']}.json",
            endpoint="test_key",
            headers=_basic(str(pending["api_key_sid"]), str(pending["api_key_secret"])),
        )

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        old_sid = previous.get("api_key_sid")
        if not old_sid or old_sid == current.get("api_key_sid"):
            return
        try:
            self.api.call(
                "DELETE",
                f"/2010-04-01/Accounts/{current['account_sid']}/Keys/{old_sid}.json",
                endpoint="delete_key",
                ok=(204,),
                headers=self._account_auth(current),
            )
        except ResourceNotFound:
            logger.info("old twilio api key already deleted", key_sid=old_sid)
            return
        logger.info("old twilio api key deleted", key_sid=old_sid)


def sendgrid_key_id(secret: SecretValue) -> str | None:
    """The key's id: stored as ``api_key_id``, else the middle part of ``SG.<id>.<secret>``."""
    if secret.get("api_key_id"):
        return str(secret["api_key_id"])
    parts = str(secret.get("api_key") or "").split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "SG" else None


class SendGridKeyRotation:
    provider = "sendgrid"
    REQUIRED_SCOPE = "mail.send"

    def __init__(
        self,
        api: ProviderApi,
        *,
        scopes: Sequence[str],
        key_name_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.scopes = list(scopes)
        self.key_name_prefix = key_name_prefix
        self.clock = clock

    def create(self, current: SecretValue, token: str) -> SecretValue:
        now = self.clock()
        response = self.api.call(
            "POST",
            "/v3/api_keys",
            endpoint="create_key",
            ok=(201,),
            headers=_bearer(str(current["api_key"])),
            json={"name": _key_name(self.key_name_prefix, token, now), "scopes": self.scopes},
        )
        key = response.json()
        register_secret(key["api_key"])
        logger.info("sendgrid api key created", api_key_id=key["api_key_id"])
        pending = drop_expired_roll(current, now=now)
        return {**pending, "api_key": key["api_key"], "api_key_id": key["api_key_id"]}

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """SendGrid made the key in createSecret: it is already live."""

    def test(self, pending: SecretValue) -> None:
        scopes = (
            self.api.call("GET", "/v3/scopes", endpoint="test_key", headers=_bearer(str(pending["api_key"])))
            .json()
            .get("scopes", [])
        )
        if self.REQUIRED_SCOPE not in scopes:
            raise AuthenticationFailed(
                f"the new key lacks the {self.REQUIRED_SCOPE} scope",
                provider=self.provider,
                code="scope_missing",
            )

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        old_id = sendgrid_key_id(previous)
        if not old_id or old_id == sendgrid_key_id(current):
            return
        try:
            self.api.call(
                "DELETE",
                f"/v3/api_keys/{old_id}",
                endpoint="delete_key",
                ok=(204,),
                headers=_bearer(str(current["api_key"])),
            )
        except ResourceNotFound:
            logger.info("old sendgrid api key already deleted", api_key_id=old_id)
            return
        logger.info("old sendgrid api key deleted", api_key_id=old_id)


class StripeRotation:
    """Keeps ``api_key``: Stripe has no API to make secret keys. The webhook signing secret lives in a
    secret of its own and rolls there (rotation/signing.py); an ended roll left in this one from before
    the two were split is dropped."""

    provider = "stripe"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def create(self, current: SecretValue, token: str) -> SecretValue:
        return drop_expired_roll(current, now=self.clock())

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """Nothing to push: Stripe has no API to set a secret key or a signing secret."""

    def test(self, pending: SecretValue) -> None:
        from pydantic import ValidationError

        from tidings.secrets import StripeCredentials

        try:
            StripeCredentials.model_validate(pending)
        except ValidationError:
            raise AuthenticationFailed(
                "the pending secret has no api_key", provider=self.provider, code="secret_malformed"
            ) from None

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        """Nothing to revoke: the previous webhook secret expires by ``previous_valid_until``."""
