"""``tidings secrets set``, ``tidings webhooks register``, ``tidings doctor``: from a deployed stack to one
that delivers (docs/deploy.md).

* ``secrets set stripe|sendgrid|twilio`` reads the credentials from a prompt (never echoed) or from stdin
  (a JSON object, or one value per line), checks them with the provider's read-only call, refuses a live
  Stripe key unless ``--live``, merges them into the stack's secret and records an audit entry (the field
  names, never a value).
* ``webhooks register [provider ...]`` points each provider's webhook at the stack's
  ``/webhooks/<provider>`` and stores the signing key the provider answers beside the credentials.
* ``doctor`` checks it all end to end and says what to fix; exit status 1 when a check fails.

The same on a deployed stack and on the local system (``tidings_ops.target``): tables by default,
``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from typing import IO, Any

from tidings_ops import render
from tidings_ops.provider_accounts import PROVIDERS, ProviderRefused, webhook_url
from tidings_ops.stack_secrets import LAYOUTS, Layout
from tidings_ops.target import OperatorError, Target, add_target_options, target_from

#: What each plain (non-secret) field must look like; a credential is only checked by the provider.
FIELD_SHAPES = {
    "account_sid": re.compile(r"^AC[0-9a-fA-F]{32}$"),
    "api_key_sid": re.compile(r"^SK[0-9a-fA-F]{32}$"),
    "from_number": re.compile(r"^\+[1-9]\d{6,14}$"),
}
LIVE_STRIPE_KEY = re.compile(r"^(sk|rk)_live_")


def register(subparsers: argparse._SubParsersAction) -> None:
    secrets = subparsers.add_parser("secrets", help="the stack's provider credentials")
    commands = secrets.add_subparsers(dest="secrets_command", required=True)
    setter = commands.add_parser(
        "set",
        help="check a provider's credentials and store them in the stack's Secrets Manager",
        description="Reads the credentials from a prompt (not echoed) or, when stdin is not a terminal, "
        "from stdin: a JSON object of the fields, or one value per line.",
    )
    add_target_options(setter)
    setter.add_argument("provider", choices=PROVIDERS)
    for layout in LAYOUTS.values():
        for field in layout.fields:
            if not field.secret:
                option = "--" + field.name.replace("_", "-")
                setter.add_argument(
                    option, dest=field.name, default=None, help=f"{field.label} ({layout.provider})"
                )
    setter.add_argument("--live", action="store_true", help="accept a live-mode Stripe key")
    setter.set_defaults(func=_secrets_set)

    webhooks = subparsers.add_parser("webhooks", help="the providers' webhooks to the stack")
    commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    registering = commands.add_parser(
        "register", help="create or update each provider's webhook to the stack and store its signing key"
    )
    add_target_options(registering)
    registering.add_argument(
        "providers", nargs="*", metavar="provider", help="stripe, sendgrid, twilio (default: all)"
    )
    registering.add_argument("--api-url", help="the base URL providers call (default: PublicApiBaseUrl)")
    registering.add_argument(
        "--recreate", action="store_true", help="Stripe: make the endpoint again (a new signing secret)"
    )
    registering.set_defaults(func=_webhooks_register)

    doctor = subparsers.add_parser("doctor", help="check a deployed stack end to end, and what to fix")
    add_target_options(doctor)
    doctor.add_argument("--api-url", help="the base URL providers call (default: PublicApiBaseUrl)")
    doctor.set_defaults(func=_doctor)


# --- secrets set -----------------------------------------------------------------------------------
def read_values(layout: Layout, given: dict[str, str | None], stdin: IO[str]) -> dict[str, str]:
    """Every field of ``layout``: plain ones from ``given`` (options) or the input, credentials from a
    prompt or stdin. No value is ever echoed or put in an error."""
    values = {name: value for name, value in given.items() if value}
    wanted = [f for f in layout.fields if f.name not in values]
    if stdin.isatty():
        for field in wanted:
            if field.secret:
                values[field.name] = getpass.getpass(f"{field.label}: ").strip()
            else:
                values[field.name] = input(f"{field.label}: ").strip()
    else:
        text = stdin.read()
        if text.lstrip().startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise OperatorError("stdin is not a JSON object (nothing stored).") from None
            if not isinstance(parsed, dict):
                raise OperatorError("stdin is not a JSON object (nothing stored).")
            for field in wanted:
                if isinstance(parsed.get(field.name), str):
                    values[field.name] = parsed[field.name].strip()
        else:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            secret_fields = [f for f in wanted if f.secret]
            if len(lines) != len(secret_fields):
                names = ", ".join(f.name for f in secret_fields)
                raise OperatorError(
                    f"stdin holds {len(lines)} line(s); {layout.provider} needs {len(secret_fields)}: "
                    f"{names} (one per line, in that order), or a JSON object (nothing stored)."
                )
            values.update({f.name: line for f, line in zip(secret_fields, lines, strict=True)})
    missing = [f.name for f in layout.fields if not values.get(f.name)]
    if missing:
        options = ", ".join(f"--{n.replace('_', '-')}" for n in missing if not _is_secret(layout, n))
        hint = f" (pass {options})" if options else ""
        raise OperatorError(f"No {', '.join(missing)} given for {layout.provider}{hint}: nothing stored.")
    for name, shape in FIELD_SHAPES.items():
        if name in values and not shape.fullmatch(values[name]):
            raise OperatorError(f"The {name} does not look like one ({shape.pattern}): nothing stored.")
    return {f.name: values[f.name] for f in layout.fields}


def _is_secret(layout: Layout, name: str) -> bool:
    return next(f.secret for f in layout.fields if f.name == name)


def _secrets_set(args: argparse.Namespace, stdin: IO[str] | None = None) -> int:
    from tidings_ops.doctor import Doctor

    layout = LAYOUTS[args.provider]
    given = {f.name: getattr(args, f.name, None) for f in layout.fields if not f.secret}
    values = read_values(layout, given, stdin or sys.stdin)
    target = target_from(args)
    doctor = Doctor(target)
    if args.provider == "stripe" and LIVE_STRIPE_KEY.match(values["api_key"]) and not args.live:
        _audit(target, "secrets.set", "refused", args.provider, {"reason": "live_key"})
        raise OperatorError("That is a live-mode Stripe key: pass --live to store it (nothing stored).")
    account = doctor.account(args.provider, {**doctor.secrets.credentials(args.provider), **values})
    try:
        result = account.check()
    except ProviderRefused as exc:
        _audit(target, "secrets.set", "refused", args.provider, {"check": "provider_refused"})
        raise OperatorError(f"{exc} Nothing stored.") from None
    if result.livemode and not args.live:
        _audit(target, "secrets.set", "refused", args.provider, {"reason": "live_key"})
        raise OperatorError(
            f"{result.call} says the key is in live mode: pass --live to store it (nothing stored)."
        )
    changed = doctor.secrets.merge(layout.credentials, values)
    if layout.signing_field in values:
        # Twilio signs with the auth token just checked: the receiver's copy follows it at once.
        doctor.secrets.merge(layout.signing, {layout.signing_field: values[layout.signing_field]})
    _audit(
        target,
        "secrets.set",
        "ok",
        args.provider,
        {"fields": "/".join(changed) or "none", "livemode": result.livemode},
    )
    row = {
        "provider": args.provider,
        "secret": layout.credentials,
        "changed": changed,
        "checked": result.call,
        "livemode": result.livemode,
        "warnings": result.warnings,
    }
    if args.json:
        render.emit_json(row)
        return 0
    render.table(
        f"Credentials of {args.provider} on {target.where}",
        ("secret", "changed", "checked with", "mode"),
        [(layout.credentials, ", ".join(changed) or "(unchanged)", result.call, _mode(result.livemode))],
    )
    for warning in result.warnings:
        render.say(f"[yellow]warning:[/] {warning}")
    return 0


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"


def _audit(target: Target, action: str, outcome: str, provider: str, details: dict[str, Any]) -> None:
    from tidings_ops.operations import Operations

    if not Operations(target).record(
        action, outcome, target_kind="secret", target_id=provider, details=details
    ):
        print(f"warning: the audit record of {action} could not be written", file=sys.stderr)


# --- webhooks register -------------------------------------------------------------------------------
def _webhooks_register(args: argparse.Namespace) -> int:
    from tidings_ops.doctor import Doctor

    target = target_from(args)
    doctor = Doctor(target, api_url=args.api_url)
    unknown = sorted(set(args.providers) - set(PROVIDERS))
    if unknown:
        raise OperatorError(f"No provider {', '.join(unknown)}: one of {', '.join(PROVIDERS)}.")
    base = doctor.api_base_url()
    rows = []
    for provider in args.providers or PROVIDERS:
        layout = LAYOUTS[provider]
        credentials = doctor.secrets.credentials(provider)
        missing = [f.name for f in layout.fields if not credentials.get(f.name)]
        if missing:
            raise OperatorError(
                f"The {provider} secret has no {', '.join(missing)}: "
                f"run `tidings secrets set {provider}` first."
            )
        # Stripe: an endpoint whose secret the stack does not hold (or --recreate) is made again.
        signing_key = None if args.recreate and provider == "stripe" else doctor.secrets.signing_key(provider)
        url = webhook_url(base, provider)
        try:
            registration = doctor.account(provider, credentials).register(url, signing_key)
        except ProviderRefused:
            _audit(target, "webhooks.register", "refused", provider, {})
            raise
        stored = doctor.secrets.merge(layout.signing, registration.signing) if registration.signing else []
        _audit(
            target,
            "webhooks.register",
            "ok",
            provider,
            {"created": registration.created, "stored": "/".join(stored) or "none"},
        )
        rows.append(
            {
                "provider": provider,
                "url": url,
                "created": registration.created,
                "stored": stored,
                "id": registration.facts.get("id") or registration.facts.get("number_sid"),
            }
        )
    if args.json:
        render.emit_json(rows)
        return 0
    render.table(
        f"Webhooks of {target.where}",
        ("provider", "url", "at the provider", "signing key stored"),
        (
            (
                r["provider"],
                r["url"],
                f"{'created' if r['created'] else 'updated'} {r['id'] or ''}".strip(),
                ", ".join(r["stored"]) or "(unchanged)",
            )
            for r in rows
        ),
    )
    return 0


# --- doctor ------------------------------------------------------------------------------------------
def _doctor(args: argparse.Namespace) -> int:
    from tidings_ops.doctor import Doctor

    target = target_from(args)
    checks = Doctor(target, api_url=args.api_url).run()
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        render.emit_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
        return 1 if failed else 0
    render.table(
        f"Doctor: {target.where}",
        ("check", "status", "found", "fix"),
        ((c.check, c.status, c.detail, c.fix) for c in checks),
    )
    warned = sum(1 for c in checks if c.status == "warn")
    if failed:
        render.say(
            f"[red]{len(failed)} check(s) failed[/], {warned} warning(s): fix them in the order listed."
        )
        return 1
    render.say(f"[green]ready to deliver[/] ({warned} warning(s))")
    return 0
