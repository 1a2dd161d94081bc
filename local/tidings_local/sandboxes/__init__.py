"""Local HTTP sandboxes for Stripe, SendGrid and Twilio, with faults, rate limits and webhooks.

    from tidings_local.sandboxes import start_sandbox
    with start_sandbox("stripe") as sb:
        sb.base_url                      # http://127.0.0.1:<free port>
        sb.control.inject_fault("reset", count=2)
        sb.control.requests("/v1/payment_intents")

See docs/sandboxes.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from tidings_local.sandboxes.control import SandboxClient, SandboxControlError
from tidings_local.sandboxes.core import Sandbox
from tidings_local.sandboxes.providers import PROVIDERS

#: Where `tidings sandbox serve` listens unless told otherwise.
DEFAULT_PORTS: dict[str, int] = {"stripe": 12111, "sendgrid": 12112, "twilio": 12113}

__all__ = [
    "DEFAULT_PORTS",
    "PROVIDERS",
    "Sandbox",
    "SandboxClient",
    "SandboxControlError",
    "SandboxGroup",
    "start_all",
    "start_sandbox",
]


def start_sandbox(
    provider: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    webhook_url: str | None = None,
    webhook_retry_delays: list[float] | None = None,
    verbose: bool = False,
) -> Sandbox:
    """Start one sandbox serving in a background thread; use it as a context manager to stop it."""
    return Sandbox(
        provider,
        host=host,
        port=port,
        webhook_url=webhook_url,
        webhook_retry_delays=webhook_retry_delays,
        verbose=verbose,
    ).start()


class SandboxGroup(Mapping[str, Sandbox]):
    """The three sandboxes started together: ``group["stripe"].base_url``."""

    def __init__(self, sandboxes: dict[str, Sandbox]) -> None:
        self._sandboxes = sandboxes

    def __getitem__(self, name: str) -> Sandbox:
        return self._sandboxes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sandboxes)

    def __len__(self) -> int:
        return len(self._sandboxes)

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: sb.base_url for name, sb in self._sandboxes.items()}

    def stop(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.stop()

    def __enter__(self) -> SandboxGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    *,
    webhook_urls: Mapping[str, str | None] | None = None,
    webhook_retry_delays: list[float] | None = None,
    verbose: bool = False,
) -> SandboxGroup:
    """Start stripe, sendgrid and twilio at once. ``ports`` defaults to 0 (free ports) for each."""
    ports = ports or {}
    webhook_urls = webhook_urls or {}
    started: dict[str, Sandbox] = {}
    try:
        for name in PROVIDERS:
            started[name] = start_sandbox(
                name,
                host=host,
                port=ports.get(name, 0),
                webhook_url=webhook_urls.get(name),
                webhook_retry_delays=webhook_retry_delays,
                verbose=verbose,
            )
    except BaseException:
        for sandbox in started.values():
            sandbox.stop()
        raise
    return SandboxGroup(started)
