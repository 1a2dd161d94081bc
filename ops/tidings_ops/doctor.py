"""``tidings doctor``: is a deployed stack ready to deliver, and if not, what to fix.

Each check is one row: its name, ``ok``, ``warn`` (it delivers, with a limit worth knowing) or ``fail``
(something a notification needs is missing), what was found and the command or setting that fixes it.
Checks run in order and each one stands alone: a failing secret does not hide the alarm check.

* ``secret <provider>``: the stack's secret holds every credential field;
* ``credentials <provider>``: a read-only call with them succeeds (``tidings_ops.provider_accounts``);
* ``webhook <provider>``: the provider's webhook points at the stack, with the events Tidings handles and
  signing on, and the stack holds the key to verify it (Twilio: the sender number's ``SmsUrl``, the
  status callback URL the stack sends, and the auth token it signs with);
* ``ses identity``: the receipt sender (``ReceiptFromAddress``) or its domain is verified in SES;
* ``sns sms sandbox``: whether SNS SMS (the fallback) can reach any number or only verified ones;
* ``alarms``: every alarm notifies an SNS topic, and each such topic has a confirmed subscription.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tidings_ops.errors_text import aws_call
from tidings_ops.provider_accounts import (
    BASE_URL_PARAMETERS,
    DEFAULT_BASE_URLS,
    PROVIDERS,
    ProviderAccount,
    webhook_url,
)
from tidings_ops.stack import StackResources
from tidings_ops.stack_secrets import LAYOUTS, StackSecrets
from tidings_ops.target import OperatorError, Target

Status = Literal["ok", "warn", "fail"]
SENDER_PARAMETER = "ReceiptFromAddress"
PUBLIC_API_PARAMETER = "PublicApiBaseUrl"


@dataclass
class Check:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Doctor:
    def __init__(self, target: Target, *, api_url: str | None = None, providers: tuple[str, ...] = PROVIDERS):
        self.target = target
        self.resources = StackResources(target)
        self.secrets = StackSecrets(target, self.resources)
        self.providers = providers
        self._api_url = api_url

    # --- what the checks share ----------------------------------------------------------------------
    def api_base_url(self) -> str:
        """The URL providers call back: ``--api-url``, else PublicApiBaseUrl, else the API's own URL."""
        url = (
            self._api_url
            or self.resources.parameters.get(PUBLIC_API_PARAMETER)
            or self.resources.outputs.get("NotifyApiUrl")
        )
        if not url:
            raise OperatorError(
                "The stack has no public API URL (no PublicApiBaseUrl parameter, no NotifyApiUrl output): "
                "pass --api-url."
            )
        return url.rstrip("/")

    def account(self, provider: str, credentials: dict[str, Any] | None = None) -> ProviderAccount:
        base = self.resources.parameters.get(BASE_URL_PARAMETERS[provider]) or DEFAULT_BASE_URLS[provider]
        if credentials is None:
            credentials = self.secrets.credentials(provider)
        return ProviderAccount(provider, base, credentials)

    # --- the checks ---------------------------------------------------------------------------------
    def run(self) -> list[Check]:
        checks: list[Check] = []
        for provider in self.providers:
            checks.extend(self._provider(provider))
        for check, name in (
            (self._ses_identity, "ses identity"),
            (self._sms_sandbox, "sns sms sandbox"),
            (self._alarms, "alarms"),
        ):
            checks.extend(_guarded(check, name))
        return checks

    def _provider(self, provider: str) -> Iterator[Check]:
        layout = LAYOUTS[provider]
        try:
            values = self.secrets.credentials(provider)
        except OperatorError as exc:
            yield Check(
                f"secret {provider}", "fail", str(exc), f"is the stack deployed? ({layout.credentials})"
            )
            return
        missing = [f.name for f in layout.fields if not values.get(f.name)]
        if missing:
            yield Check(
                f"secret {provider}",
                "fail",
                f"{layout.credentials} has no {', '.join(missing)}",
                f"tidings secrets set {provider}",
            )
            return
        yield Check(f"secret {provider}", "ok", f"{layout.credentials} holds {len(layout.fields)} field(s)")
        account = self.account(provider, values)
        try:
            result = account.check()
        except OperatorError as exc:
            yield Check(f"credentials {provider}", "fail", str(exc), f"tidings secrets set {provider}")
            return
        detail = f"{result.call} answered"
        if provider == "stripe":
            detail += " (live mode)" if result.livemode else " (test mode)"
        if result.warnings:
            yield Check(f"credentials {provider}", "warn", f"{detail}; {'; '.join(result.warnings)}")
        else:
            yield Check(f"credentials {provider}", "ok", detail)
        yield from _guarded(lambda: self._webhook(provider, account, values), f"webhook {provider}")

    def _webhook(self, provider: str, account: ProviderAccount, values: dict[str, Any]) -> Iterator[Check]:
        name, register = f"webhook {provider}", f"tidings webhooks register {provider}"
        url = webhook_url(self.api_base_url(), provider)
        found = account.registered(url)
        if found is None:
            yield Check(name, "fail", f"no {provider} webhook points at {url}", register)
            return
        problems = []
        facts = found.facts
        signing_field = LAYOUTS[provider].signing_field
        if provider == "stripe":
            if facts.get("status") != "enabled":
                problems.append(f"endpoint {facts.get('id')} is {facts.get('status')}")
            if facts.get("missing_events"):
                problems.append(f"it is not sent {', '.join(facts['missing_events'])}")
        if provider == "sendgrid":
            if not facts.get("enabled"):
                problems.append("the Event Webhook is disabled")
            if not facts.get("signed"):
                problems.append("signing is off")
            if facts.get("missing_events"):
                problems.append(f"it is not sent {', '.join(facts['missing_events'])}")
        if provider == "twilio":
            callback_base = self.resources.parameters.get(PUBLIC_API_PARAMETER)
            if not callback_base:
                problems.append("the stack asks for no status callbacks (PublicApiBaseUrl is empty)")
            elif webhook_url(callback_base, provider) != url:
                problems.append(f"the stack's status callbacks go to {webhook_url(callback_base, provider)}")
            signing = account.registered_signing()
        else:
            signing = found.signing
        stored = self.secrets.signing_key(provider)
        if not stored:
            problems.append(f"{LAYOUTS[provider].signing} holds no {signing_field} to verify it")
        elif signing.get(signing_field) and signing[signing_field] != stored:
            problems.append(f"the stack's {signing_field} is not the one {provider} signs with")
        if problems:
            fix = register
            if provider == "twilio" and any("status callbacks" in p for p in problems):
                redeploy = f"sam deploy --parameter-overrides {PUBLIC_API_PARAMETER}={self.api_base_url()}"
                fix = f"{redeploy}; {register}"
            yield Check(name, "fail", "; ".join(problems), fix)
            return
        yield Check(name, "ok", f"{url}, signed")

    def _ses_identity(self) -> Iterator[Check]:
        sender = self.resources.parameters.get(SENDER_PARAMETER)
        if not sender:
            yield Check("ses identity", "warn", f"the stack has no {SENDER_PARAMETER} parameter")
            return
        domain = sender.rpartition("@")[2]
        with aws_call(self.target, "SES GetIdentityVerificationAttributes"):
            attributes = self.target.client("ses").get_identity_verification_attributes(
                Identities=[sender, domain]
            )["VerificationAttributes"]
        verified = [
            i for i in (sender, domain) if attributes.get(i, {}).get("VerificationStatus") == "Success"
        ]
        if verified:
            yield Check("ses identity", "ok", f"{verified[0]} is verified")
            return
        status = attributes.get(sender, {}).get("VerificationStatus") or "not requested"
        yield Check(
            "ses identity",
            "fail",
            f"the receipt sender {sender} is not verified in SES ({status})",
            f"aws ses verify-email-identity --email-address {sender} (or verify {domain}), then open the "
            "link SES mails",
        )

    def _sms_sandbox(self) -> Iterator[Check]:
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        # One try: an endpoint that does not know the call (an AWS-compatible one) answers the same again.
        sns = self.target.session.client(
            "sns", endpoint_url=self.target.endpoint_url, config=Config(retries={"max_attempts": 1})
        )
        try:
            answer = sns.get_sms_sandbox_account_status()
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            code = (
                exc.response.get("Error", {}).get("Code", "Error")
                if isinstance(exc, ClientError)
                else (type(exc).__name__)
            )
            yield Check(
                "sns sms sandbox",
                "warn",
                f"SNS did not say whether SMS is in its sandbox ({code}): the SMS fallback may reach "
                "verified numbers only",
                "check SNS console > Text messaging (SMS) > Sandbox",
            )
            return
        if answer.get("IsInSandbox"):
            yield Check(
                "sns sms sandbox",
                "warn",
                "SNS SMS is in the sandbox: the SMS fallback reaches verified numbers only",
                "ask AWS for SMS production access (SNS console > Text messaging)",
            )
            return
        yield Check("sns sms sandbox", "ok", "SNS SMS is out of the sandbox")

    def _alarms(self) -> Iterator[Check]:
        names = sorted(self.resources.of_type("AWS::CloudWatch::Alarm").values())
        if not names:
            yield Check("alarms", "warn", "the stack has no alarms")
            return
        cloudwatch, sns = self.target.client("cloudwatch"), self.target.client("sns")
        alarms: list[dict[str, Any]] = []
        with aws_call(self.target, "CloudWatch DescribeAlarms"):
            for start in range(0, len(names), 100):
                alarms += cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])["MetricAlarms"]
        silent = sorted(a["AlarmName"] for a in alarms if not a.get("AlarmActions"))
        missing = sorted(set(names) - {a["AlarmName"] for a in alarms})
        topics = sorted({arn for a in alarms for arn in a.get("AlarmActions", []) if ":sns:" in arn})
        unheard = []
        with aws_call(self.target, "SNS ListSubscriptionsByTopic"):
            for topic in topics:
                subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
                confirmed = [s for s in subscriptions if s.get("SubscriptionArn", "").startswith("arn:")]
                if not confirmed:
                    unheard.append(topic)
        problems = []
        if missing:
            problems.append(f"{len(missing)} alarm(s) not found ({', '.join(missing[:3])})")
        if silent:
            problems.append(f"{len(silent)} alarm(s) notify nobody ({', '.join(silent[:3])})")
        for topic in unheard:
            problems.append(f"topic {topic.rsplit(':', 1)[-1]} has no confirmed subscription")
        if problems:
            fix = (
                f"aws sns subscribe --topic-arn {unheard[0]} --protocol email --notification-endpoint <you>, "
                "then confirm (or deploy with AlarmEmail=...)"
                if unheard
                else "sam deploy (the template gives every alarm AlarmActions)"
            )
            yield Check("alarms", "fail", "; ".join(problems), fix)
            return
        yield Check("alarms", "ok", f"{len(alarms)} alarm(s) notify {len(topics)} subscribed topic(s)")


def _guarded(check: Callable[[], Iterator[Check]], name: str) -> Iterator[Check]:
    """A check that cannot run is a failed row saying why, never the end of the report."""
    rows: list[Check] = []
    try:
        rows.extend(check())
    except OperatorError as exc:
        rows.append(Check(name, "fail", str(exc)))
    yield from rows
