"""Builds provider channels from settings: one per container, sharing the container's clients.

A :class:`ProviderFactory` is what one Lambda container holds. Tests build two of them over the same
(moto) tables to play two containers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tidings.config import (
    BreakerSettings,
    ProviderName,
    RateLimitedService,
    RateLimitSettings,
    Settings,
    get_settings,
)
from tidings.observability import logger
from tidings.resilience.timing import Timing

if TYPE_CHECKING:  # the implementations are imported when first built (cold start)
    import httpx
    from mypy_boto3_dynamodb import DynamoDBClient
    from pydantic import BaseModel

    from tidings.errors import ProviderError
    from tidings.live_config import LiveSettings
    from tidings.providers._http import HttpProvider
    from tidings.providers.channels import EmailChannel, SmsChannel
    from tidings.providers.dedup import SendDeduplicator
    from tidings.providers.ses import SendQuotaReader, SesSendQuota
    from tidings.providers.stripe import StripePaymentGateway
    from tidings.providers.twilio import TwilioSmsChannel
    from tidings.resilience.breaker import ProviderCircuitBreaker
    from tidings.resilience.caller import ResilientCaller
    from tidings.resilience.rate_limit import BucketStore, RateLimiter
    from tidings.secrets import CredentialStore


class ProviderFactory:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        timing: Timing | None = None,
        dynamodb_client: DynamoDBClient | None = None,
        secrets_client: Any | None = None,
        credential_store: CredentialStore | None = None,
        http_client: httpx.Client | None = None,
        ses_client: SendQuotaReader | None = None,
        breaker_thresholds: Callable[[], BreakerSettings] | None = None,
        rate_limits: Callable[[RateLimitedService], RateLimitSettings] | None = None,
    ) -> None:
        """``breaker_thresholds`` and ``rate_limits`` are where live configuration plugs in: read at every
        call (default: the settings' own, fixed for the container)."""
        self.settings = settings or get_settings()
        self.timing = timing or Timing(scale=self.settings.retry_time_scale)
        self._dynamodb_client = dynamodb_client
        self._secrets_client = secrets_client
        self._credential_store = credential_store
        self._http_client = http_client
        self._ses_client = ses_client
        self._breaker_thresholds = breaker_thresholds
        self._rate_limits = rate_limits
        self._live: ProviderFactory | None = None
        self._channels: dict[str, Any] = {}

    # --- live configuration ------------------------------------------------------------------
    @cached_property
    def live_settings(self) -> LiveSettings:
        """This factory's settings with the live configuration (AppConfig) on top, when it has one."""
        from tidings.live_config import LiveSettings

        return LiveSettings.from_settings(self.settings)

    def live(self) -> ProviderFactory:
        """The factory for the settings in force now: this one while the live configuration changes
        nothing, else one built for the new settings that shares this one's clients, credential cache and
        clock (breaker and bucket state live in DynamoDB, so nothing else is lost)."""
        settings = self.live_settings.current()
        if settings is self.settings:
            return self
        if self._live is None or self._live.settings is not settings:
            self._live = ProviderFactory(
                settings,
                timing=self.timing,
                # whatever this factory built already (cached properties) or was given
                dynamodb_client=self.__dict__.get("dynamodb", self._dynamodb_client),
                secrets_client=self._secrets_client,
                credential_store=self.__dict__.get("credentials", self._credential_store),
                http_client=self.__dict__.get("http", self._http_client),
                ses_client=self._ses_client,
                breaker_thresholds=self._breaker_thresholds,
                rate_limits=self._rate_limits,
            )
            if "ses_quota" in self.__dict__:  # the container's one SES quota cache
                self._live.__dict__["ses_quota"] = self.__dict__["ses_quota"]
        return self._live

    def cached_payment_gateway(self) -> StripePaymentGateway:
        """The payment gateway, built once per factory."""
        if "payment" not in self._channels:
            self._channels["payment"] = self.payment_gateway()
        gateway: StripePaymentGateway = self._channels["payment"]
        return gateway

    def cached_email_channel(self, name: str) -> EmailChannel:
        """An e-mail channel, built once per factory."""
        key = f"email:{name}"
        if key not in self._channels:
            self._channels[key] = self.email_channel(name)
        channel: EmailChannel = self._channels[key]
        return channel

    def cached_sms_channel(self, name: str) -> SmsChannel:
        """An SMS channel, built once per factory."""
        key = f"sms:{name}"
        if key not in self._channels:
            self._channels[key] = self.sms_channel(name)
        channel: SmsChannel = self._channels[key]
        return channel

    # --- shared per-container clients --------------------------------------------------------
    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        if self._dynamodb_client is None:
            import boto3

            self._dynamodb_client = boto3.client("dynamodb")
        return self._dynamodb_client

    @cached_property
    def credentials(self) -> CredentialStore:
        if self._credential_store is not None:
            return self._credential_store
        from tidings.secrets import CredentialStore, get_credential_store

        if self._secrets_client is None:
            return get_credential_store()  # the container's one cache, shared with any other reader
        return CredentialStore(ttl_seconds=self.settings.secret_ttl_seconds, client=self._secrets_client)

    @cached_property
    def http(self) -> httpx.Client:
        """One httpx client for every provider of this container (connection pool reuse)."""
        if self._http_client is None:
            import httpx

            self._http_client = httpx.Client(follow_redirects=False)
        return self._http_client

    @cached_property
    def dedup(self) -> SendDeduplicator | None:
        if not self.settings.idempotency_table:
            logger.warning("IDEMPOTENCY_TABLE not set: duplicate sends are not suppressed")
            return None
        from tidings.providers.dedup import SendDeduplicator

        return SendDeduplicator(
            self.settings.idempotency_table,
            ttl_seconds=self.settings.send_dedup_ttl_seconds,
            dynamodb_client=self.dynamodb,
        )

    # --- resilience per provider -------------------------------------------------------------
    def breaker(self, provider: str) -> ProviderCircuitBreaker | None:
        if not self.settings.circuit_breaker_table:
            logger.warning("CIRCUIT_BREAKER_TABLE not set: no circuit breaker", provider=provider)
            return None
        from tidings.resilience.breaker import ProviderCircuitBreaker

        return ProviderCircuitBreaker.from_settings(
            provider,
            self.settings,
            dynamodb_client=self.dynamodb,
            wall_clock=self.timing.wall,
            thresholds=self._breaker_thresholds,
        )

    def limiter(self, provider: RateLimitedService) -> RateLimiter:
        from tidings.resilience.rate_limit import (
            DynamoDBBucketStore,
            InMemoryBucketStore,
            RateLimiter,
            TokenBucket,
        )

        if self.settings.rate_limit_table:
            store: BucketStore = DynamoDBBucketStore(self.settings.rate_limit_table, self.dynamodb)
        else:
            logger.warning("RATE_LIMIT_TABLE not set: rate limit holds per container only", provider=provider)
            store = InMemoryBucketStore()
        configured = self.settings.rate_limits(provider)
        source = self._rate_limits
        limits: Callable[[], RateLimitSettings] | None = None
        if source is not None:

            def limits() -> RateLimitSettings:
                return source(provider)

        if provider == "ses" and self.settings.ses_quota_ttl_seconds > 0:
            quota, base = self.ses_quota, limits

            def limits() -> RateLimitSettings:
                return quota.limits(base() if base is not None else configured)

        return RateLimiter(
            provider,
            TokenBucket(rate=configured.rate_per_second, capacity=configured.burst),
            store,
            self.timing,
            slowdown_below_percent=configured.slowdown_below_percent,
            limits=limits,
            lead_seconds=self.settings.rate_limit_lead_seconds,
        )

    @cached_property
    def ses_quota(self) -> SesSendQuota:
        """SES's sending quota, one cache per container (its client built on the first read)."""
        from tidings.providers.ses import SesSendQuota

        def client() -> SendQuotaReader:
            if self._ses_client is None:
                from tidings.providers._aws import boto_client

                self._ses_client = boto_client(
                    "ses",
                    timeout_seconds=self.settings.http_timeout_seconds,
                    connect_timeout_seconds=self.settings.http_connect_timeout_seconds,
                )
            return self._ses_client

        return SesSendQuota(
            client,
            ttl_seconds=self.settings.ses_quota_ttl_seconds,
            burst_seconds=self.settings.rate_limit_burst_seconds,
            wall=self.timing.wall,
        )

    def caller(self, provider: RateLimitedService) -> ResilientCaller:
        """The resilience path for one service: its retry policy, shared breaker and shared bucket."""
        from tidings.resilience.caller import ResilientCaller

        return ResilientCaller.from_settings(
            provider,
            self.settings,
            timing=self.timing,
            breaker=self.breaker(provider),
            limiter=self.limiter(provider),
        )

    def http_provider(
        self,
        name: ProviderName,
        *,
        authenticate: Callable[[Any], Mapping[str, str]],
        map_error: Callable[[httpx.Response], ProviderError],
        request_id_header: str | None,
    ) -> HttpProvider:
        from tidings.providers._http import HttpProvider

        provider = self.settings.provider(name)
        store = self.credentials

        def credentials(refresh: bool) -> BaseModel:
            model: BaseModel = store.get(name, provider.secret_arn, refresh=refresh)
            return model

        return HttpProvider(
            provider=name,
            base_url=provider.base_url,
            caller=self.caller(name),
            credentials=credentials,
            authenticate=authenticate,
            map_error=map_error,
            request_id_header=request_id_header,
            http=self.http,
            timeout_seconds=self.settings.http_timeout_seconds,
            connect_timeout_seconds=self.settings.http_connect_timeout_seconds,
        )

    # --- what callers use --------------------------------------------------------------------
    def payment_gateway(self) -> StripePaymentGateway:
        from tidings.providers.stripe import StripePaymentGateway, stripe_auth, stripe_error

        http = self.http_provider(
            "stripe", authenticate=stripe_auth, map_error=stripe_error, request_id_header="Request-Id"
        )
        return StripePaymentGateway(
            http, api_version=self.settings.stripe_api_version, return_url=self.settings.stripe_return_url
        )

    def email_channel(self, name: str = "sendgrid") -> EmailChannel:
        from tidings.providers.channels import EmailChannel

        from_address = self.settings.require("receipt_from_address")
        if name == "sendgrid":
            from tidings.providers.sendgrid import SendGridEmailChannel, sendgrid_auth, sendgrid_error

            http = self.http_provider(
                "sendgrid", authenticate=sendgrid_auth, map_error=sendgrid_error, request_id_header=None
            )
            deliverer: Any = SendGridEmailChannel(http, from_address, self.settings.receipt_from_name)
        elif name == "ses":
            from tidings.providers._aws import boto_client
            from tidings.providers.ses import SesEmailChannel

            client = boto_client(
                "sesv2",
                timeout_seconds=self.settings.http_timeout_seconds,
                connect_timeout_seconds=self.settings.http_connect_timeout_seconds,
            )
            deliverer = SesEmailChannel(
                client, self.caller("ses"), from_address, self.settings.receipt_from_name
            )
        else:
            raise ValueError(f"unknown e-mail channel {name!r}: use 'sendgrid' or 'ses'")
        return EmailChannel(deliverer, self.dedup)

    def twilio_messages(self) -> TwilioSmsChannel:
        """Twilio's Messages API without the send path's duplicate-send record (the sweeper reads)."""
        from tidings.providers.twilio import TwilioSmsChannel, twilio_auth, twilio_error

        http = self.http_provider(
            "twilio", authenticate=twilio_auth, map_error=twilio_error, request_id_header="Twilio-Request-Id"
        )
        return TwilioSmsChannel(http)

    def sms_channel(self, name: str = "twilio") -> SmsChannel:
        from tidings.providers.channels import SmsChannel

        if name == "twilio":
            from tidings.providers.twilio import TwilioSmsChannel, twilio_auth, twilio_error

            http = self.http_provider(
                "twilio",
                authenticate=twilio_auth,
                map_error=twilio_error,
                request_id_header="Twilio-Request-Id",
            )
            deliverer: Any = TwilioSmsChannel(http)
        elif name == "sns":
            from tidings.providers._aws import boto_client
            from tidings.providers.sns import SnsSmsChannel

            client = boto_client(
                "sns",
                timeout_seconds=self.settings.http_timeout_seconds,
                connect_timeout_seconds=self.settings.http_connect_timeout_seconds,
            )
            deliverer = SnsSmsChannel(client, self.caller("sns"))
        else:
            raise ValueError(f"unknown SMS channel {name!r}: use 'twilio' or 'sns'")
        return SmsChannel(deliverer, self.dedup)
