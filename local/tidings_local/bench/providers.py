"""Provider clients: importing Tidings' httpx client for one provider vs importing its official SDK.

Every side is a cold-start probe (:mod:`tidings_local.bench.coldstart`), fresh processes of the same
base interpreter measured in the same interleaved rounds as the handlers. Two comparisons:

* In a handler (:func:`marginal_targets`, issue 13's acceptance): what sending through the provider
  adds to a handler that sends through it. The *base* is that function's floor
  (:data:`~tidings_local.bench.coldstart.FLOORS`) and ``tidings.observability`` (the logger, tracer and
  settings every handler imports), in the function's environment (tracer on). Tidings' side is the base
  and then the client's module with its HTTP path (what the factory builds); the SDK's side is the base
  and then what a user of the SDK imports to send. Both run in one environment holding the layer's
  packages and the SDKs (the layer and the ``bench`` group), and each process times its last import on
  its own: that is the marginal cost, side minus base, without the run-to-run noise of two processes.
* On their own (:func:`targets`): the client's module alone and with its HTTP path
  (:mod:`tidings.providers._http`: httpx, the logger, the retry policy) in the layer's environment,
  against the SDK in an environment holding the SDKs and nothing of the layer.

The SDK versions are the lock's (``uv.lock``, group ``bench``); they are recorded with the results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tidings_local.bench.coldstart import FLOORS, Target, handler_targets


@dataclass(frozen=True)
class ProviderClient:
    provider: str
    module: str  # Tidings' client for the provider
    sdk_import: str  # what a user of the official SDK imports to send
    sdk_package: str  # its distribution on PyPI
    function: str  # the function whose environment Tidings' side gets (it sends through the client)

    @property
    def tidings_name(self) -> str:
        return f"tidings: {self.provider}"

    @property
    def sending_name(self) -> str:
        return f"tidings: {self.provider} + HTTP path"

    @property
    def sdk_name(self) -> str:
        return f"sdk: {self.provider}"

    @property
    def base_name(self) -> str:
        return f"in handler: {self.provider} base"

    @property
    def marginal_tidings_name(self) -> str:
        return f"in handler: base + tidings {self.provider}"

    @property
    def marginal_sdk_name(self) -> str:
        return f"in handler: base + sdk {self.provider}"


PROVIDERS = (
    # stripe.StripeClient and every resource (stripe.PaymentIntent.create ...) come with the package
    ProviderClient("stripe", "tidings.providers.stripe", "import stripe", "stripe", "ChargePaymentFunction"),
    # SendGridAPIClient and the Mail helper come with the package
    ProviderClient(
        "sendgrid", "tidings.providers.sendgrid", "import sendgrid", "sendgrid", "SendEmailFunction"
    ),
    # twilio.rest.Client is the SDK's documented entry point (client.messages.create)
    ProviderClient(
        "twilio", "tidings.providers.twilio", "from twilio.rest import Client", "twilio", "SendSmsFunction"
    ),
)
NAMES = tuple(client.provider for client in PROVIDERS)
# The HTTP path every Tidings client sends through, imported by the factory when it builds one.
HTTP_PATH = "import tidings.providers._http"
# What every handler imports besides its floor: the layer's logger, tracer and settings.
OBSERVABILITY = "import tidings.observability"


def selected(only: Sequence[str] = ()) -> list[ProviderClient]:
    unknown = sorted(set(only) - set(NAMES))
    if unknown:
        raise ValueError(f"not a provider: {', '.join(unknown)} (one of {', '.join(NAMES)})")
    return [client for client in PROVIDERS if not only or client.provider in only]


def targets(
    template_path: Path,
    only: Sequence[str] = (),
    *,
    layer_python: str = sys.executable,
    sdk_python: str = sys.executable,
) -> list[Target]:
    """Three targets per provider, next to each other: Tidings' client, the same with its HTTP path, and
    the SDK."""
    found = []
    for client in selected(only):
        (carrier,) = handler_targets(template_path, [client.function], python=layer_python)
        env = carrier.environment
        found.append(Target(client.tidings_name, client.module, environment=env, python=layer_python))
        found.append(
            Target(
                client.sending_name, client.module, environment=env, statement=HTTP_PATH, python=layer_python
            )
        )
        found.append(Target(client.sdk_name, "", statement=client.sdk_import, python=sdk_python))
    return found


def base_statement(client: ProviderClient) -> str:
    """The base a handler sending through ``client`` stands on: its function's floor and the layer's
    observability."""
    return "\n".join([FLOORS[client.function].statement, OBSERVABILITY])


def marginal_targets(
    template_path: Path, only: Sequence[str] = (), *, python: str = sys.executable
) -> list[Target]:
    """Three targets per provider, next to each other: the base, the base then Tidings' client with its
    HTTP path, the base then the SDK; all in ``python`` (the layer's packages and the SDKs), all with
    the environment of the function that sends through the provider."""
    found = []
    for client in selected(only):
        (carrier,) = handler_targets(template_path, [client.function], python=python)
        env = carrier.environment
        base = base_statement(client)
        ours = "\n".join([f"import {client.module}", HTTP_PATH])
        found += [
            Target(client.base_name, "", environment=env, statement=base, python=python),
            Target(
                client.marginal_tidings_name,
                "",
                environment=env,
                statement=base,
                marginal=ours,
                python=python,
            ),
            Target(
                client.marginal_sdk_name,
                "",
                environment=env,
                statement=base,
                marginal=client.sdk_import,
                python=python,
            ),
        ]
    return found


def sdk_versions(sdk_python: str) -> dict[str, str | None]:
    """The installed version of each SDK in ``sdk_python``'s environment (None: not installed)."""
    import json
    import subprocess

    code = (
        "import importlib.metadata as m, json, sys\n"
        "def v(name):\n"
        "    try:\n"
        "        return m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        "print(json.dumps({name: v(name) for name in sys.argv[1:]}))\n"
    )
    packages = [client.sdk_package for client in PROVIDERS]
    completed = subprocess.run(  # noqa: S603 - our own interpreter
        [sdk_python, "-c", code, *packages], capture_output=True, text=True, check=True
    )
    versions: dict[str, str | None] = json.loads(completed.stdout)
    return versions
