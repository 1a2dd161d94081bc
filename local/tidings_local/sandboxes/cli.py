"""`tidings sandbox ...`: serve the provider sandboxes and drive them from a shell.

tidings sandbox serve                                  # stripe :12111, sendgrid :12112, twilio :12113
tidings sandbox fault stripe status --status 503 --count 3
tidings sandbox requests stripe --path /v1/payment_intents
tidings sandbox reset stripe
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from tidings_local.sandboxes import DEFAULT_PORTS, PROVIDERS, SandboxClient, SandboxControlError, start_all
from tidings_local.sandboxes.faults import FAULT_KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    sandbox = subparsers.add_parser("sandbox", help="provider sandboxes (Stripe, SendGrid, Twilio)")
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True)

    serve = commands.add_parser("serve", help="run the three sandboxes until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1")
    for name in PROVIDERS:
        serve.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name], metavar="PORT")
        serve.add_argument(
            f"--{name}-webhook-url", default=None, metavar="URL", help=f"where {name} webhooks go"
        )
    serve.add_argument(
        "--webhook-retry-delays",
        type=_delays,
        default=None,
        metavar="S,S,...",
        help="seconds between retries",
    )
    serve.add_argument("--verbose", action="store_true", help="print one line per request")
    serve.set_defaults(func=_serve)

    fault = commands.add_parser("fault", help="inject a fault")
    _target(fault)
    fault.add_argument("kind", choices=FAULT_KINDS)
    fault.add_argument("--count", type=int, default=None, help="how many requests (default: until cleared)")
    fault.add_argument("--status", type=int, default=None, help="status for kind=status (e.g. 503, 429)")
    fault.add_argument("--retry-after", type=int, default=None, help="Retry-After seconds (429)")
    fault.add_argument("--delay", type=float, default=None, help="seconds (latency, hang)")
    fault.add_argument("--path", default=None, help="only requests whose path starts with this")
    fault.set_defaults(func=_fault)

    clear = commands.add_parser("clear-faults", help="remove every fault")
    _target(clear)
    clear.set_defaults(func=lambda a: _print(_client(a).clear_faults() or {"cleared": True}))

    requests = commands.add_parser("requests", help="print the requests the sandbox received (JSON)")
    _target(requests)
    requests.add_argument("--path", default=None, help="only paths starting with this")
    requests.add_argument("--count", action="store_true", help="print only how many")
    requests.set_defaults(func=_requests)

    reset = commands.add_parser("reset", help="forget objects, requests, faults, rate limit, deliveries")
    _target(reset)
    reset.set_defaults(func=lambda a: _print(_client(a).reset() or {"reset": a.name}))

    rate = commands.add_parser("rate-limit", help="token bucket: PER_SECOND (or 'off') and --burst")
    _target(rate)
    rate.add_argument("per_second", help="requests per second, or 'off'")
    rate.add_argument("--burst", type=int, default=None)
    rate.set_defaults(func=_rate_limit)

    webhook = commands.add_parser("webhook", help="where the sandbox posts its webhooks (URL or 'off')")
    _target(webhook)
    webhook.add_argument("webhook_url")
    webhook.add_argument("--retry-delays", type=_delays, default=None, metavar="S,S,...")
    webhook.set_defaults(func=_webhook)

    deliveries = commands.add_parser("deliveries", help="print the webhook deliveries (JSON)")
    _target(deliveries)
    deliveries.set_defaults(func=lambda a: _print(_client(a).webhook_deliveries()))

    challenge = commands.add_parser("complete-action", help="Stripe: finish a 3-D Secure challenge")
    challenge.add_argument("payment_intent")
    challenge.add_argument("--outcome", choices=("succeeded", "failed"), default="succeeded")
    challenge.add_argument(
        "--url", default=None, help=f"sandbox URL (default http://127.0.0.1:{DEFAULT_PORTS['stripe']})"
    )
    challenge.set_defaults(func=_complete_action, name="stripe")

    reply = commands.add_parser(
        "sms-reply", help="Twilio: a customer texts the shop's number (STOP opts the number out)"
    )
    reply.add_argument("from_number", help="the customer's number, E.164")
    reply.add_argument("body", nargs="?", default="STOP", help="the text (default STOP; START opts back in)")
    reply.add_argument(
        "--webhook-url",
        default="http://127.0.0.1:3000/webhooks/twilio",
        help="the incoming-message webhook (default: the local API's Twilio route)",
    )
    reply.add_argument(
        "--url", default=None, help=f"sandbox URL (default http://127.0.0.1:{DEFAULT_PORTS['twilio']})"
    )
    reply.set_defaults(
        func=lambda a: _run(lambda: _client(a).inbound_sms(a.from_number, a.body, a.webhook_url)),
        name="twilio",
    )


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=PROVIDERS)
    parser.add_argument(
        "--url", default=None, help="sandbox base URL (default http://127.0.0.1:<its default port>)"
    )


def _delays(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected seconds separated by commas, e.g. 0.1,0.5,2") from exc


def _client(args: argparse.Namespace) -> SandboxClient:
    return SandboxClient(args.url or f"http://127.0.0.1:{DEFAULT_PORTS[args.name]}")


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2))
    return 0


def _run(action: Any) -> int:
    try:
        return _print(action())
    except SandboxControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _fault(args: argparse.Namespace) -> int:
    return _run(
        lambda: _client(args).inject_fault(
            args.kind,
            count=args.count,
            path_prefix=args.path,
            status=args.status,
            retry_after=args.retry_after,
            delay=args.delay,
        )
    )


def _requests(args: argparse.Namespace) -> int:
    records = _client(args).requests(args.path)
    return _print({"count": len(records)} if args.count else records)


def _rate_limit(args: argparse.Namespace) -> int:
    per_second = None if args.per_second == "off" else float(args.per_second)
    return _run(lambda: _client(args).set_rate_limit(per_second, args.burst))


def _webhook(args: argparse.Namespace) -> int:
    url = None if args.webhook_url == "off" else args.webhook_url
    return _run(lambda: _client(args).set_webhook(url, args.retry_delays))


def _complete_action(args: argparse.Namespace) -> int:
    return _run(lambda: _client(args).complete_action(args.payment_intent, args.outcome))


def _serve(args: argparse.Namespace) -> int:
    ports = {name: getattr(args, f"{name}_port") for name in PROVIDERS}
    webhooks = {name: getattr(args, f"{name}_webhook_url") for name in PROVIDERS}
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with start_all(
        args.host,
        ports,
        webhook_urls=webhooks,
        webhook_retry_delays=args.webhook_retry_delays,
        verbose=args.verbose,
    ) as group:
        for name, url in group.base_urls.items():
            hook = webhooks[name] or "(none: tidings sandbox webhook ...)"
            print(f"{name:<9} {url}   webhooks -> {hook}")
        print("credentials: local/tidings_local/sandboxes/credentials.py; docs: docs/sandboxes.md")
        print("Ctrl-C to stop", flush=True)
        stop.wait()
    return 0
