"""``make deploy``: a first deployment guided, later ones as saved (docs/deploy.md).

    python -m tidings_ops.deploy --config-env dev [--guided] [--dry-run] [--sam .venv/bin/sam]

Before ``sam deploy`` runs, the parameters a first deployment must decide are listed with what each one
does and what it is now (from template.yaml and samconfig.toml's ``parameter_overrides``); the other
parameters keep their defaults (docs/saga.md, docs/operations.md). The first deployment of an environment
(its ``JwtIssuer`` still the template's placeholder) runs ``sam deploy --guided``, which asks for every
parameter and saves the answers in samconfig.toml; later ones run ``sam deploy --config-env <env>``.
Afterwards the steps that take the stack to its first notification are printed.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

TEMPLATE = Path("template.yaml")
SAMCONFIG = Path("samconfig.toml")
PLACEHOLDER = "CHANGEME"

#: The parameters a first deployment decides, and why each one matters then.
FIRST_DEPLOY: dict[str, str] = {
    "Stage": "names the secrets (tidings/<stage>/stripe, ...) and tells environments apart",
    "JwtIssuer": "the identity provider whose access tokens the API accepts (a Cognito user pool URL)",
    "JwtAudience": "the app client id (aud / client_id) those tokens carry",
    "ReceiptFromAddress": "the receipt sender: verify it (or its domain) in SES and in SendGrid",
    "PublicApiBaseUrl": "leave empty on the first deploy; then set it to the NotifyApiUrl output (or a "
    "custom domain) and deploy again, so Twilio is asked for status callbacks",
    "AlarmEmail": "who hears the alarms (confirm the e-mail SNS sends), or AlarmTopicArn for a pager topic",
    "AlarmTopicArn": "an existing SNS topic for every alarm; empty creates one",
    "DefaultCallbackUrl": "the shop's https endpoint for status events of notifications without their own",
    "StripeReturnUrl": "the shop's page Stripe returns the customer to after 3-D Secure",
    "KmsKeyArn": "a customer-managed KMS key for tables, queues and secrets; empty uses AWS-owned keys",
}

NEXT_STEPS = """\
Next, from this directory (docs/deploy.md):
  .venv/bin/tidings secrets set stripe {where}       # each reads the key from a prompt, checks it, stores it
  .venv/bin/tidings secrets set sendgrid {where}
  .venv/bin/tidings secrets set twilio {where} --account-sid AC... --api-key-sid SK... --from-number +1...
  make deploy ENV={env} with PublicApiBaseUrl set to the NotifyApiUrl output, if it is still empty
  .venv/bin/tidings webhooks register {where}
  .venv/bin/tidings doctor {where}                   # says what is left to fix
"""


def template_parameters(path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    """The template's Parameters section (libyaml when installed: the template is 3,000 lines)."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    # CloudFormation's short forms (!Ref, !Sub, ...) are read as nothing: only Parameters matter here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    document = yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 (a SafeLoader subclass)
    return dict(document.get("Parameters") or {})


def saved_overrides(config_env: str, path: Path = SAMCONFIG) -> dict[str, str]:
    """samconfig.toml's ``parameter_overrides`` of ``config_env`` (``Key="value" Key2=value``)."""
    if not path.is_file():
        return {}
    env = tomllib.loads(path.read_text()).get(config_env) or {}
    raw = (env.get("deploy") or {}).get("parameters", {}).get("parameter_overrides") or ""
    items = raw if isinstance(raw, list) else shlex.split(raw)
    overrides = {}
    for item in items:
        key, _, value = str(item).partition("=")
        overrides[key] = value.strip('"')
    return overrides


def plan(config_env: str, *, guided: bool = False) -> dict[str, Any]:
    """What ``make deploy`` will do: the parameters to decide (now, and explained) and the command."""
    parameters = template_parameters()
    overrides = saved_overrides(config_env)
    rows = []
    for name, why in FIRST_DEPLOY.items():
        if name not in parameters:
            continue
        default = parameters[name].get("Default", "")
        value = overrides.get(name, default)
        rows.append({"parameter": name, "value": str(value), "set": name in overrides, "why": why})
    first = PLACEHOLDER in str(overrides.get("JwtIssuer", parameters.get("JwtIssuer", {}).get("Default", "")))
    guided = guided or first
    command = ["deploy", "--config-env", config_env] + (["--guided"] if guided else [])
    return {
        "config_env": config_env,
        "first_deploy": first,
        "guided": guided,
        "parameters": rows,
        "other_parameters": len(parameters) - len(rows),
        "command": command,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-env", default="dev", help="samconfig.toml environment (default dev)")
    parser.add_argument("--guided", action="store_true", help="ask for every parameter even if saved")
    parser.add_argument("--dry-run", action="store_true", help="explain and print the command only")
    parser.add_argument("--sam", default=shutil.which("sam") or "sam", help="the sam executable")
    args = parser.parse_args(argv)
    if not TEMPLATE.is_file():
        print("make deploy: run it from the project directory (no template.yaml here).", file=sys.stderr)
        return 2
    chosen = plan(args.config_env, guided=args.guided)
    print(f"Deploying samconfig.toml environment {args.config_env!r}.")
    if chosen["first_deploy"]:
        print("First deployment (JwtIssuer is still the template's placeholder): sam will ask for each")
        print("parameter and save the answers in samconfig.toml. Decide these; the rest keep defaults:")
    else:
        print("The parameters a deployment decides (saved in samconfig.toml unless marked default):")
    width = max(len(r["parameter"]) for r in chosen["parameters"])
    for row in chosen["parameters"]:
        value = row["value"] or "(empty)"
        mark = "" if row["set"] else " (default)"
        print(f"  {row['parameter']:<{width}}  {value}{mark}\n  {'':<{width}}  {row['why']}")
    print(f"  ... and {chosen['other_parameters']} more with defaults (docs/saga.md, docs/operations.md).")
    command = [args.sam, *chosen["command"]]
    print("$ " + shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    finished = subprocess.run(command, check=False)  # noqa: S603 (the operator's own sam)
    if finished.returncode != 0:
        return finished.returncode
    print(NEXT_STEPS.format(where=f"--config-env {args.config_env}", env=args.config_env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
