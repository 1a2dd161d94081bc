"""``tidings local invoke|start-api|up|token``: the template on this machine, without Docker.

``invoke`` and ``start-api`` take the arguments ``sam local invoke`` / ``sam local start-api`` take
(where they apply); ``up`` runs the whole system until Ctrl-C; ``token`` prints a JWT the local API accepts.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

STATE_DIR = Path(".local-state")
ENDPOINTS_FILE = STATE_DIR / "endpoints.json"
JWT_KEY_FILE = STATE_DIR / "jwt-signing-key.pem"
DEFAULT_SANDBOX_PORTS = {"stripe": 12111, "sendgrid": 12112, "twilio": 12113}
#: Where `tidings local up` receives the shop's callbacks (docs/callbacks.md).
CALLBACK_RECEIVER_PORT = 12114


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="run the SAM template locally (moto, no Docker)")
    commands = local.add_subparsers(dest="local_command", required=True)

    invoke = commands.add_parser("invoke", help="invoke one function with an event, like `sam local invoke`")
    invoke.add_argument("function_id", nargs="?", help="logical id of the function (optional if only one)")
    invoke.add_argument("-e", "--event", help="JSON event file ('-' reads stdin); default {}")
    _common(invoke)
    invoke.add_argument("--no-sandboxes", action="store_true", help="leave provider URLs as in the template")
    invoke.add_argument(
        "--seed",
        default=None,
        help="sample data to load before the invoke (default: events/seed/notifications.json beside the "
        "template, if present)",
    )
    invoke.add_argument("--no-seed", action="store_true", help="start from empty tables")
    invoke.set_defaults(func=cmd_invoke)

    start_api = commands.add_parser(
        "start-api", help="serve the template's HTTP API, like `sam local start-api`"
    )
    start_api.add_argument("-p", "--port", type=int, default=3000)
    start_api.add_argument("--host", default="127.0.0.1")
    start_api.add_argument("--issuer-port", type=int, default=3001)
    start_api.add_argument("--moto-port", type=int, default=4566)
    _serving_options(start_api)
    _common(start_api)
    start_api.set_defaults(func=cmd_start_api)

    up = commands.add_parser("up", help="the whole system: AWS on moto, sandboxes, API, issuer, pollers")
    up.add_argument("-p", "--port", type=int, default=3000)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--issuer-port", type=int, default=3001)
    up.add_argument("--moto-port", type=int, default=4566)
    up.add_argument("--console-port", type=int, default=8080, help="the local console's port (0: any)")
    up.add_argument("--no-sandboxes", action="store_true")
    _serving_options(up)
    _common(up)
    up.set_defaults(func=cmd_up)

    callbacks = commands.add_parser(
        "callbacks", help="the status callbacks the local receiver got (docs/callbacks.md)"
    )
    callbacks.add_argument("--url", default=None, help="default: the running `tidings local up` receiver")
    callbacks.add_argument("--json", action="store_true", help="everything recorded, as JSON")
    callbacks.add_argument("--fail", type=int, default=None, metavar="N", help="answer the next N with 503")
    callbacks.set_defaults(func=cmd_callbacks)

    token = commands.add_parser("token", help="print a JWT the local API accepts")
    token.add_argument("--issuer-url", help="default: the running `tidings local up` issuer")
    token.add_argument("--sub", default="local-user")
    token.add_argument(
        "--scope",
        default=None,
        help="space-separated scopes (default: notifications/write notifications/read; docs/api.md)",
    )
    token.add_argument("--audience", default=None)
    token.add_argument("--expires-in", type=int, default=3600)
    token.set_defaults(func=cmd_token)


def _serving_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warm-containers",
        choices=["EAGER", "LAZY"],
        default="LAZY",
        help="EAGER starts one container per function at boot; LAZY (default) on first use",
    )
    parser.add_argument(
        "--no-reload", action="store_true", help="keep containers when function or layer code changes"
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--template", "--template-file", default="template.yaml")
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, e.g. Stage=dev StripeApiBaseUrl=http://127.0.0.1:12111",
    )
    parser.add_argument(
        "-n",
        "--env-vars",
        help='JSON file {"<FunctionLogicalId>": {"VAR": "v"}, "Parameters": {"VAR": "v"}} as sam reads it',
    )
    parser.add_argument("--debug", action="store_true", help="log what the local system does")


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The SAM transform warns about its own unpublished usage metrics: not the user's concern.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)


def _system_options(args: argparse.Namespace) -> dict[str, Any]:
    from tidings_local.stack.template import parse_parameter_overrides

    env_vars = json.loads(Path(args.env_vars).read_text()) if args.env_vars else {}
    return {
        "template": Path(args.template),
        "overrides": parse_parameter_overrides(args.parameter_overrides),
        "function_env": env_vars,
    }


def cmd_invoke(args: argparse.Namespace) -> int:
    # stdout carries only the handler's result, as with sam: anything else that prints (a library's
    # warning, moto reached by an execution still running while the stack stops) goes to stderr.
    result_out = sys.stdout
    sys.stdout = sys.stderr
    try:
        payload = _invoke(args)
    finally:
        sys.stdout = result_out
    if isinstance(payload, int):
        return payload
    # Like sam: the result (or the error document) on stdout, exit 0 even when the function failed.
    result_out.write(payload.decode() + "\n")
    result_out.flush()
    return 0


def _seed_path(args: argparse.Namespace) -> Path | None:
    if args.no_seed:
        return None
    if args.seed:
        return Path(args.seed)
    default = Path(args.template).resolve().parent / "events" / "seed" / "notifications.json"
    return default if default.is_file() else None


def _invoke(args: argparse.Namespace) -> bytes | int:
    from tidings_local.stack.system import LocalSystem
    from tidings_local.stack.template import TemplateError

    _configure_logging(args.debug)
    if args.event == "-":
        event = json.loads(sys.stdin.read() or "{}")
    elif args.event:
        event = json.loads(Path(args.event).read_text())
    else:
        event = {}
    try:
        system = LocalSystem.start(
            **_system_options(args),
            sandboxes=not args.no_sandboxes,
            pollers=False,
            serve_api=False,
            seed=_seed_path(args),
        )
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with system:
        functions = sorted(system.runtime.specs) if system.runtime else []
        function_id = args.function_id
        if function_id is None:
            if len(functions) != 1:
                print(f"error: name the function to invoke, one of: {', '.join(functions)}", file=sys.stderr)
                return 2
            function_id = functions[0]
        if function_id not in functions:
            print(
                f"error: no function {function_id!r} in the template; functions: {', '.join(functions)}",
                file=sys.stderr,
            )
            return 2
        return system.invoke(function_id, event).payload


def _serve_until_stopped() -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def _serving_system_options(args: argparse.Namespace) -> dict[str, Any]:
    """What `start-api` and `up` both pass to LocalSystem.start: addresses, the issuer key, containers."""
    return {
        **_system_options(args),
        "host": args.host,
        "api_port": args.port,
        "moto_port": args.moto_port,
        "issuer_port": args.issuer_port,
        "jwt_key_path": JWT_KEY_FILE,
        "warm_containers": args.warm_containers == "EAGER",
        "reload_code": not args.no_reload,
    }


def cmd_start_api(args: argparse.Namespace) -> int:
    from tidings_local.stack.system import LocalSystem

    _configure_logging(args.debug)
    STATE_DIR.mkdir(exist_ok=True)
    with LocalSystem.start(**_serving_system_options(args), sandboxes=False, pollers=False) as system:
        _write_endpoints(system)
        print(_routes_text(system), file=sys.stderr)
        print(f"Serving the HTTP API on {system.api_url} (Ctrl-C to stop)", file=sys.stderr)
        _serve_until_stopped()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from tidings_local.stack.system import LocalSystem

    _configure_logging(args.debug)
    STATE_DIR.mkdir(exist_ok=True)
    with LocalSystem.start(
        **_serving_system_options(args),
        sandboxes=not args.no_sandboxes,
        sandbox_ports=DEFAULT_SANDBOX_PORTS,
        callback_receiver_port=CALLBACK_RECEIVER_PORT,
        default_callback=True,
        own_processes=True,  # moto and the sandboxes beside this process: the second core is used
    ) as system:
        from tidings_local.console.server import for_local_system

        console = for_local_system(system, port=args.console_port)
        _write_endpoints(system)
        print(_banner(system), file=sys.stderr)
        print(
            f"  Console        {console.url}  (notifications, executions, DLQs, fault switches)\n",
            file=sys.stderr,
        )
        try:
            _serve_until_stopped()
        finally:
            console.close()
    ENDPOINTS_FILE.unlink(missing_ok=True)
    return 0


def _write_endpoints(system: Any) -> None:
    endpoints = {
        "api_url": system.api_url,
        "issuer_url": system.issuer_url,
        "moto_url": system.moto_url,
        "sandboxes": {name: sb.base_url for name, sb in system.sandboxes.items()},
        "callback_receiver": system.callback_receiver.base_url if system.callback_receiver else None,
        "stack": system.stack.facts(),
    }
    ENDPOINTS_FILE.write_text(json.dumps(endpoints, indent=2) + "\n")


def _routes_text(system: Any) -> str:
    assert system.api is not None
    routes = sorted(system.api.routes, key=lambda key: (key.split(" ")[-1], key))
    return "\n".join(f"  {route}" for route in routes) or "  (the template declares no HttpApi routes)"


def _banner(system: Any) -> str:
    lines = [
        "",
        "Tidings is running locally (template deployed on moto). Ctrl-C stops everything.",
        "",
        f"  HTTP API       {system.api_url}",
        f"  JWT issuer     {system.issuer_url}  (/.well-known/jwks.json, POST /token)",
        f"  AWS on moto    {system.moto_url}  (export AWS_ENDPOINT_URL={system.moto_url}"
        " AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)",
    ]
    for name, sandbox in sorted(system.sandboxes.items()):
        lines.append(f"  {name:<14} {sandbox.base_url}  (sandbox)")
    if not system.sandboxes:
        lines.append("  sandboxes      not started: providers use the template's base URLs")
    if system.callback_receiver is not None:
        lines.append(
            f"  callbacks      {system.callback_receiver.callback_url}  (the shop's status events: "
            ".venv/bin/tidings local callbacks)"
        )
    lines += ["", "Routes:", _routes_text(system), ""]
    lines += [
        "Get a token:",
        "  TOKEN=$(.venv/bin/tidings local token)",
        "Start a notification:",
        f"  curl -sS -X POST {system.api_url}/notifications \\",
        '    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
        '    -H "Idempotency-Key: demo-1" \\',
        f"    -d '{json.dumps(SAMPLE_NOTIFICATION)}'",
        "Then follow it: GET /notifications/<notification_id> with the same Authorization header.",
        "",
    ]
    return "\n".join(lines)


# A request the notify API accepts (Stripe's test card; the sandboxes accept these addresses).
SAMPLE_NOTIFICATION = {
    "order_reference": "order-1001",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+15005550006"},
    "payment": {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"},
    "receipt": {"subject": "Your receipt for order-1001", "text": "Thank you for your order."},
    "sms": {"text": "Order order-1001 is paid. Thank you!"},
}


def cmd_callbacks(args: argparse.Namespace) -> int:
    """List what the local callback receiver got, or script its next failures."""
    url = args.url
    if url is None:
        endpoints = json.loads(ENDPOINTS_FILE.read_text()) if ENDPOINTS_FILE.is_file() else {}
        url = endpoints.get("callback_receiver")
        if not url:
            print(
                "error: no running local system found; start `tidings local up` or pass --url",
                file=sys.stderr,
            )
            return 1
    base = url.rstrip("/")
    try:
        if args.fail is not None:
            request = urllib.request.Request(
                base + "/_receiver/fail",
                data=json.dumps({"count": args.fail, "status": 503}).encode(),
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                print(response.read().decode().strip())
            return 0
        with urllib.request.urlopen(base + "/_receiver/callbacks", timeout=5) as response:
            records = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: the callback receiver at {base} did not answer ({exc})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    print(f"{'webhook-id':<37} {'type':<28} {'notification':<36} {'status':<24} {'verified':<8} try answered")
    for record in records:
        data = record.get("data") or {}
        status = data.get("status") or ""
        if record.get("type") == "notification.channel.updated":
            status = f"{data.get('channel')}: {data.get('channel_status')}"
        verified = "yes" if record.get("verified") else f"no ({record.get('rejection')})"
        print(
            f"{record.get('webhook_id') or '':<37} {record.get('type') or '':<28} "
            f"{data.get('notification_id') or '':<36} {status:<24} {verified:<8} "
            f"{record.get('delivery'):<3} {record.get('answered')}"
        )
    print(f"{len(records)} callbacks, {len({r.get('webhook_id') for r in records})} distinct events")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    issuer_url = args.issuer_url
    if issuer_url is None:
        if not ENDPOINTS_FILE.is_file():
            print(
                "error: no running local system found; start `tidings local up` or pass --issuer-url",
                file=sys.stderr,
            )
            return 1
        issuer_url = json.loads(ENDPOINTS_FILE.read_text())["issuer_url"]
    fields = {"sub": args.sub, "expires_in": str(args.expires_in)}
    if args.scope is not None:
        fields["scope"] = args.scope
    if args.audience:
        fields["aud"] = args.audience
    request = urllib.request.Request(
        issuer_url.rstrip("/") + "/token",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            token = json.loads(response.read())["access_token"]
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: the JWT issuer at {issuer_url} did not answer ({exc})", file=sys.stderr)
        return 1
    print(token)
    return 0
