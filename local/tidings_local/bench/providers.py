"""Provider clients: importing Tidings' httpx client for one provider vs importing its official SDK.

Both sides are cold-start probes (:mod:`tidings_local.bench.coldstart`), fresh processes of the same
base interpreter measured in the same interleaved rounds as the handlers. Tidings' side imports the
provider's module in the layer's environment, with the environment of the function that sends through
it (the tracer on, as deployed), twice: the client's module alone, and with the HTTP path it sends
through (:mod:`tidings.providers._http`: httpx, the logger, the retry policy), which the module leaves
to the factory that builds the client. The SDK's side imports what a user of the SDK imports to send,
in an environment holding the SDKs (the ``bench`` dependency group) and nothing of the layer.

The SDK versions are the lock's (``uv.lock``, group ``bench``); they are recorded with the results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tidings_local.bench.coldstart import Target, handler_targets


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
