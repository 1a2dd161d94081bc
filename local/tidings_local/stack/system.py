"""The whole local system in one object: moto, the deployed template, workers, pollers, API, issuer.

    with LocalSystem.start(overrides={"ChargeRetryIntervalSeconds": "1"}) as system:
        headers = {"Authorization": f"Bearer {system.token()}"}
        httpx.post(f"{system.api_url}/notifications", headers=headers, json=...)
        system.boto3_client("stepfunctions").list_executions(...)

Everything binds to 127.0.0.1; every port defaults to 0 (ephemeral) so parallel test runs never collide.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tidings_local.stack.api_gateway import LocalHttpApi
from tidings_local.stack.deployer import DeployedStack, Deployer, verify_ses_identity
from tidings_local.stack.jwt_issuer import DEFAULT_AUDIENCE, JwtIssuer
from tidings_local.stack.lambdas import (
    InvocationResult,
    LambdaRuntime,
    LogSink,
    stderr_sink,
)
from tidings_local.stack.moto_server import MotoServer
from tidings_local.stack.patches import install_moto_lambda_patch
from tidings_local.stack.sqs_poller import SqsPoller
from tidings_local.stack.stream_poller import StreamPoller
from tidings_local.stack.template import REGION, load_template, parse_yaml

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"

# Template parameters the local system fills in when the template declares them.
SANDBOX_URL_PARAMETERS = {
    "StripeApiBaseUrl": "stripe",
    "SendGridApiBaseUrl": "sendgrid",
    "TwilioApiBaseUrl": "twilio",
}
# Parameters naming SES senders the operator verifies on AWS; locally they are verified after deploy.
SES_SENDER_PARAMETERS = ("ReceiptFromAddress",)
ISSUER_PARAMETER = "JwtIssuer"
# The base URL providers call back (Twilio status callbacks): the local API, when it serves.
PUBLIC_API_PARAMETER = "PublicApiBaseUrl"
RETURN_URL_PARAMETER = "StripeReturnUrl"
AUDIENCE_PARAMETER = "JwtAudience"
# Plain http to the local system's own callback receiver (on AWS the parameter stays empty: https only).
CALLBACK_HTTP_HOSTS_PARAMETER = "CallbackHttpAllowedHosts"
# Where notifications without their own callback_url call back: the receiver, when asked (`make run`).
DEFAULT_CALLBACK_PARAMETER = "DefaultCallbackUrl"
CALLBACK_SECRET_RESOURCE = "CallbackSigningSecret"


def default_secret_values() -> dict[str, dict[str, str]]:
    """Seeds for the template's secrets: the sandboxes' documented local credentials, and a fresh
    signing key for the shop's callbacks (on AWS its rotation makes the first one on deploy)."""
    from tidings.outbound.signing import generate_secret
    from tidings_local.sandboxes.credentials import provider_secret_values

    return {**provider_secret_values(), "callbacks": {"signing_secret": generate_secret()}}


def start_sandboxes(
    host: str, ports: Mapping[str, int] | None, api_url: str | None, own_process: bool = False
) -> dict[str, Any]:
    """The provider sandboxes by name (those that start), posting their webhooks to the local API (if any);
    in a process of their own with ``own_process`` (sandbox_process.py)."""
    try:
        from tidings_local.sandboxes import PROVIDERS, start_sandbox
    except ImportError as exc:
        log.warning("provider sandboxes not available, providers keep their template URLs: %s", exc)
        return {}
    if own_process:
        from tidings_local.stack.sandbox_process import SandboxProcess

        wanted = {
            name: ((ports or {}).get(name, 0), f"{api_url}/webhooks/{name}" if api_url else None)
            for name in PROVIDERS
        }
        return dict(SandboxProcess(host, wanted).start())
    started: dict[str, Any] = {}
    for name in PROVIDERS:
        try:
            started[name] = start_sandbox(
                name,
                host=host,
                port=(ports or {}).get(name, 0),
                webhook_url=f"{api_url}/webhooks/{name}" if api_url else None,
            )
        except ImportError as exc:
            log.warning("%s sandbox not available, it keeps its template URL: %s", name, exc)
    return started


def publish_templates(sendgrid: Any) -> None:
    """The layer's receipt templates in the SendGrid sandbox under the catalogue's ids, as an operator
    creates them in the account before deploying (docs/templates.md); a sandbox reset forgets them."""
    from tidings.templates.catalog import get_catalog
    from tidings.templates.handlebars import sendgrid_versions

    for template_id, published in sendgrid_versions(get_catalog()).items():
        sendgrid.put_template(template_id, published)


def shared_code_dirs() -> list[Path]:
    """Folders every function imports from (the layer's ``tidings`` package), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("tidings")
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


_active: LocalSystem | None = None  # the system that owns this process's moto state


class LocalSystem:
    """Use ``LocalSystem.start(...)`` (a context manager; ``stop()`` when used without ``with``)."""

    def __init__(self) -> None:
        self.moto: MotoServer | None = None
        self.issuer: JwtIssuer | None = None
        self.api: LocalHttpApi | None = None
        self.runtime: LambdaRuntime | None = None
        self.stack: DeployedStack | None = None
        self.sandboxes: dict[str, Any] = {}
        self.pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.callback_receiver: Any = None
        self._clients: dict[str, Any] = {}
        self._stopped = False

    @classmethod
    def start(
        cls,
        template: str | Path = DEFAULT_TEMPLATE,
        overrides: Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        moto_port: int = 0,
        api_port: int = 0,
        issuer_port: int = 0,
        sandboxes: bool = True,
        sandbox_ports: Mapping[str, int] | None = None,
        pollers: bool = True,
        serve_api: bool = True,
        function_env: Mapping[str, Mapping[str, str]] | None = None,
        secret_values: Mapping[str, Any] | None = None,
        jwt_key_path: str | Path | None = None,
        log_sink: LogSink = stderr_sink,
        stack_name: str = "tidings-local",
        containers_per_function: int = 4,
        warm_containers: bool = False,
        reload_code: bool = False,
        seed: str | Path | None = None,
        callback_receiver_port: int | None = 0,
        default_callback: bool = False,
        own_processes: bool = False,
    ) -> LocalSystem:
        system = cls()
        try:
            system._boot(
                Path(template),
                dict(overrides or {}),
                host=host,
                moto_port=moto_port,
                api_port=api_port,
                issuer_port=issuer_port,
                sandboxes=sandboxes,
                sandbox_ports=sandbox_ports,
                pollers=pollers,
                serve_api=serve_api,
                function_env=function_env,
                secret_values=secret_values,
                jwt_key_path=jwt_key_path,
                log_sink=log_sink,
                stack_name=stack_name,
                containers_per_function=containers_per_function,
                warm_containers=warm_containers,
                reload_code=reload_code,
                seed=seed,
                callback_receiver_port=callback_receiver_port,
                default_callback=default_callback,
                own_processes=own_processes,
            )
        except BaseException:
            system.stop()
            raise
        return system

    def _boot(self, template_path: Path, overrides: dict[str, Any], **options: Any) -> None:
        global _active
        if _active is not None:
            # moto keeps one state per process (its backends are module globals): two systems would
            # share and reset each other's resources. The newest one wins, the older one is stopped.
            log.warning("stopping the local system started earlier in this process: one runs at a time")
            _active.stop()
        _active = self
        host = options["host"]
        # moto and the sandboxes in processes of their own use the second core and time each request as
        # it arrives (moto_process.py, sandbox_process.py); in this one, tests can read moto's backends
        # directly (the SES and SNS messages it kept, say).
        self.moto = MotoServer(host, options["moto_port"], own_process=options["own_processes"]).start()
        self.runtime = LambdaRuntime(
            self.moto.url, log_sink=options["log_sink"], max_concurrency=options["containers_per_function"]
        )
        install_moto_lambda_patch(self.runtime)
        self.api = LocalHttpApi(self.runtime, host, options["api_port"])
        if options["sandboxes"]:
            webhook_target = self.api.url if options["serve_api"] else None
            self.sandboxes = start_sandboxes(
                host, options["sandbox_ports"], webhook_target, own_process=options["own_processes"]
            )
            if "sendgrid" in self.sandboxes:
                publish_templates(self.sandboxes["sendgrid"].control)

        declared = parse_yaml(template_path.read_text()).get("Parameters") or {}
        audience = str(
            overrides.get(AUDIENCE_PARAMETER)
            or declared.get(AUDIENCE_PARAMETER, {}).get("Default")
            or DEFAULT_AUDIENCE
        )
        self.issuer = JwtIssuer(
            host, options["issuer_port"], audience=audience, key_path=options["jwt_key_path"]
        ).start()
        automatic: dict[str, Any] = {}
        for parameter, name in SANDBOX_URL_PARAMETERS.items():
            if parameter in declared and name in self.sandboxes:
                automatic[parameter] = self.sandboxes[name].base_url
        if RETURN_URL_PARAMETER in declared and "stripe" in self.sandboxes:
            # Any page will do: the sandbox only needs a return_url to answer with its challenge page.
            automatic[RETURN_URL_PARAMETER] = f"{self.sandboxes['stripe'].base_url}/_sandbox/stripe/return"
        if ISSUER_PARAMETER in declared:
            automatic[ISSUER_PARAMETER] = self.issuer.url
        if AUDIENCE_PARAMETER in declared:
            automatic[AUDIENCE_PARAMETER] = audience
        if options["callback_receiver_port"] is not None:
            from tidings_local.stack.callback_receiver import CallbackReceiver

            self.callback_receiver = CallbackReceiver(
                host, options["callback_receiver_port"], secret=self._callback_signing_secret
            ).start()
            if CALLBACK_HTTP_HOSTS_PARAMETER in declared:
                automatic[CALLBACK_HTTP_HOSTS_PARAMETER] = host
            if DEFAULT_CALLBACK_PARAMETER in declared and options["default_callback"]:
                automatic[DEFAULT_CALLBACK_PARAMETER] = self.callback_receiver.callback_url
        if PUBLIC_API_PARAMETER in declared and options["serve_api"]:
            automatic[PUBLIC_API_PARAMETER] = self.api.url

        template = load_template(template_path, {**automatic, **overrides}, stack_name=options["stack_name"])
        secrets = {**default_secret_values(), **dict(options["secret_values"] or {})}
        deployer = Deployer(
            template,
            self.moto.url,
            self.runtime,
            secret_values=secrets,
            function_env=options["function_env"],
            api_url=self.api.url,
        )
        self.stack = deployer.deploy()
        for parameter in SES_SENDER_PARAMETERS:
            if template.parameters.get(parameter):
                verify_ses_identity(self.boto3_client("ses"), template.parameters[parameter])
        if options["seed"] is not None:
            from tidings_local.stack.seed import apply_seed, load_seed

            apply_seed(self, load_seed(options["seed"]))
        if options["pollers"]:
            sqs = self.boto3_client("sqs")
            self.pollers = [
                SqsPoller(m, self.runtime, sqs).start() for m in self.stack.sqs_mappings if m.enabled
            ]
            streams = self.boto3_client("dynamodbstreams")
            self.stream_pollers = [
                StreamPoller(m, self.runtime, streams, sqs).start()
                for m in self.stack.stream_mappings
                if m.enabled
            ]
        self._check_authorizers()
        if options["reload_code"]:
            self.runtime.watch_code(extra_dirs=shared_code_dirs())
        if options["warm_containers"]:
            self.runtime.warm_all()
        self.api.set_apis(self.stack.http_apis)
        if options["serve_api"]:
            self.api.serve()

    def _callback_signing_secret(self) -> str | None:
        """The signing key the stack holds now (the receiver verifies with it, as a shop would)."""
        if self.stack is None or CALLBACK_SECRET_RESOURCE not in self.stack.resources:
            return None
        import json

        value = self.boto3_client("secretsmanager").get_secret_value(
            SecretId=self.physical_id(CALLBACK_SECRET_RESOURCE)
        )
        return json.loads(value["SecretString"]).get("signing_secret")

    def _check_authorizers(self) -> None:
        """Tokens from the local issuer must fit the template's JWT authorizers; say so when they cannot."""
        assert self.stack is not None
        assert self.issuer is not None
        for api in self.stack.http_apis:
            for authorizer in api.authorizers.values():
                if authorizer.issuer.rstrip("/") != self.issuer.url:
                    log.warning(
                        "authorizer %s of %s trusts issuer %s, so local tokens will be refused: declare it "
                        "with a %s parameter and the local system points it at its own issuer",
                        authorizer.name,
                        api.logical_id,
                        authorizer.issuer,
                        ISSUER_PARAMETER,
                    )
                elif authorizer.audience and self.issuer.audience not in authorizer.audience:
                    self.issuer.audience = authorizer.audience[0]  # tokens default to an accepted audience

    # --- what tests and the CLI use ------------------------------------------------------------------

    @property
    def moto_url(self) -> str:
        assert self.moto is not None
        return self.moto.url

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def issuer_url(self) -> str:
        assert self.issuer is not None
        return self.issuer.url

    @property
    def outputs(self) -> dict[str, Any]:
        assert self.stack is not None
        return self.stack.outputs

    def physical_id(self, logical_id: str) -> Any:
        """What Ref returns for a resource: a table name, a queue URL, a function name, an ARN, ..."""
        assert self.stack is not None
        return self.stack.physical_id(logical_id)

    def attr(self, logical_id: str, attribute: str) -> Any:
        assert self.stack is not None
        return self.stack.attr(logical_id, attribute)

    def boto3_client(self, service: str) -> Any:
        """A boto3 client for the moto server (fake credentials, the stack's region)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.moto_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
            )
        return self._clients[service]

    def token(self, **claims: Any) -> str:
        """A JWT the local API accepts (override sub, scope, audience, expires_in or add claims)."""
        assert self.issuer is not None
        return self.issuer.token(**claims)

    def set_function_env(self, logical_id: str, variables: Mapping[str, str]) -> None:
        """Add or change a function's environment variables (tests: e.g. AWS_ENDPOINT_URL_SESV2).

        Its containers are replaced, so the next invocation cold-starts with the new environment.
        """
        assert self.runtime is not None
        pool = self.runtime.pool(logical_id)
        pool.spec.environment.update({k: str(v) for k, v in variables.items()})
        pool.recycle()

    def invoke(self, logical_id: str, event: Any) -> InvocationResult:
        """Run one function directly, as `sam local invoke` does."""
        assert self.runtime is not None
        return self.runtime.invoke(logical_id, event)

    def stop(self) -> None:
        """Stop everything this system started (safe to call twice)."""
        global _active
        if self._stopped:
            return
        self._stopped = True
        for poller in self.pollers:
            poller.stop(wait=False)
        for poller in self.pollers:
            poller.stop()
        for stream_poller in self.stream_pollers:
            stream_poller.stop()
        if self.callback_receiver is not None:
            self.callback_receiver.stop()
        if self.api is not None:
            self.api.stop()
        if self.runtime is not None:
            self.runtime.close()
            if _active is self:
                install_moto_lambda_patch(None)
        if self.issuer is not None:
            self.issuer.stop()
        for sandbox in self.sandboxes.values():
            stop = getattr(sandbox, "stop", None)
            if stop is not None:
                stop()
        if self.moto is not None:
            self.moto.stop()
        if _active is self:
            _active = None

    def __enter__(self) -> LocalSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
