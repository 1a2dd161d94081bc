"""``tidings config show|set|schema``: the live configuration (AppConfig), on a deployed stack or the
local system.

``set`` merges ``KEY=VALUE`` pairs (or ``--file``) into the deployed document, validates the result with
the layer's own model (``tidings.live_config``) before anything is written, then creates a hosted
configuration version and deploys it with the stack's all-at-once strategy; every running container
uses it within its TTL. A refused or a deployed change is recorded in the audit log (``config.set``,
with the keys and values changed: rates, thresholds and switch names, never anything personal).
See docs/configuration.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidings_ops import render
from tidings_ops.target import OperatorError, Target, add_target_options, target_from

PROFILE = "live-settings"  # template.yaml LiveConfigProfile's Name
STRATEGY_SUFFIX = "-all-at-once"  # template.yaml LiveConfigDeploymentStrategy's Name, after the stack


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("config", help="live configuration: rates, breaker, retries, switches")
    commands = group.add_subparsers(dest="config_command", required=True)

    show = commands.add_parser("show", help="the deployed live configuration")
    add_target_options(show)
    show.set_defaults(func=_show)

    change = commands.add_parser("set", help="validate and deploy a change (KEY=VALUE ...)")
    add_target_options(change)
    change.add_argument("pairs", nargs="*", help="twilio_rate_per_second=2 email_providers=ses_only ...")
    change.add_argument("--file", type=Path, help="a whole JSON document instead of KEY=VALUE pairs")
    change.add_argument("--unset", action="append", default=[], help="drop a key (back to its default)")
    change.set_defaults(func=_set)

    schema = commands.add_parser("schema", help="the JSON Schema AppConfig validates a document with")
    schema.set_defaults(func=_schema)


@dataclass
class Location:
    application: str
    environment: str
    profile: str
    strategy: str


class LiveConfiguration:
    """The stack's AppConfig application, environment, profile and strategy, found by their names."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.client = target.client("appconfig")

    def _call(self, what: str) -> Any:
        from tidings_ops.errors_text import aws_call

        return aws_call(self.target, f"AppConfig {what}")

    def location(self) -> Location:
        stack = self.target.stack_name
        with self._call("ListApplications"):
            apps = [a for a in self.client.list_applications()["Items"] if a["Name"] == stack]
        if not apps:
            raise OperatorError(f"Stack {stack} has no AppConfig application named {stack}.")
        app = apps[0]["Id"]
        with self._call("ListEnvironments"):
            environments = self.client.list_environments(ApplicationId=app)["Items"]
        with self._call("ListConfigurationProfiles"):
            profiles = self.client.list_configuration_profiles(ApplicationId=app)["Items"]
        with self._call("ListDeploymentStrategies"):
            strategies = self.client.list_deployment_strategies()["Items"]
        profile = [p["Id"] for p in profiles if p["Name"] == PROFILE]
        strategy = [s["Id"] for s in strategies if s["Name"] == stack + STRATEGY_SUFFIX]
        if len(environments) != 1 or not profile or not strategy:
            raise OperatorError(
                f"Stack {stack}'s AppConfig application lacks its environment, the {PROFILE} profile or "
                f"the {stack}{STRATEGY_SUFFIX} strategy: deploy the template again."
            )
        return Location(app, environments[0]["Id"], profile[0], strategy[0])

    def deployed(self, where: Location) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The document of the last completed deployment (``{}`` when none yet), and that deployment."""
        with self._call("ListDeployments"):
            items = self.client.list_deployments(
                ApplicationId=where.application, EnvironmentId=where.environment
            )["Items"]
        done = [d for d in items if d["State"] == "COMPLETE"]
        if not done:
            return {}, None
        latest = max(done, key=lambda d: d["DeploymentNumber"])
        with self._call("GetHostedConfigurationVersion"):
            version = self.client.get_hosted_configuration_version(
                ApplicationId=where.application,
                ConfigurationProfileId=where.profile,
                VersionNumber=int(latest["ConfigurationVersion"]),
            )
        document = json.loads(version["Content"].read() or b"{}")
        return document, latest

    def deploy(self, where: Location, document: dict[str, Any], description: str) -> tuple[int, int]:
        """A new hosted version with ``document``, deployed; (version number, deployment number)."""
        with self._call("CreateHostedConfigurationVersion"):
            version = self.client.create_hosted_configuration_version(
                ApplicationId=where.application,
                ConfigurationProfileId=where.profile,
                Content=json.dumps(document, sort_keys=True).encode(),
                ContentType="application/json",
                Description=description,
            )["VersionNumber"]
        with self._call("StartDeployment"):
            deployment = self.client.start_deployment(
                ApplicationId=where.application,
                EnvironmentId=where.environment,
                DeploymentStrategyId=where.strategy,
                ConfigurationProfileId=where.profile,
                ConfigurationVersion=str(version),
                Description=description,
            )
        return int(version), int(deployment["DeploymentNumber"])


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value is JSON when it parses (``2``, ``true``), else a string."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OperatorError(f"Not KEY=VALUE: {pair!r} (for example twilio_rate_per_second=2).")
        try:
            changes[key] = json.loads(value)
        except ValueError:
            changes[key] = value
    return changes


def merged(current: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.file is not None:
        if args.pairs:
            raise OperatorError("Give either --file or KEY=VALUE pairs, not both.")
        try:
            document = json.loads(args.file.read_text())
        except (OSError, ValueError) as exc:
            raise OperatorError(
                f"{args.file} is not a readable JSON document ({type(exc).__name__})."
            ) from None
        if not isinstance(document, dict):
            raise OperatorError(f"{args.file} must hold a JSON object.")
    else:
        if not args.pairs and not args.unset:
            raise OperatorError("Nothing to change: give KEY=VALUE pairs, --unset KEY or --file.")
        document = current | parse_pairs(args.pairs)
    for key in args.unset:
        document.pop(key, None)
    return document


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """The audit record's details: each key whose value changed, with the new value (unset: "unset")."""
    keys = sorted(set(before) | set(after))
    return {
        key: str(after[key]) if key in after else "unset" for key in keys if before.get(key) != after.get(key)
    }


def _audited(args: argparse.Namespace, outcome: str, target_id: str | None, details: dict[str, Any]) -> None:
    import sys

    from tidings_ops.operations import Operations

    ops = Operations(args._target)
    if not ops.record(
        "config.set", outcome, target_kind="configuration", target_id=target_id, details=details
    ):
        print("warning: the audit record of config.set could not be written", file=sys.stderr)


def _set(args: argparse.Namespace) -> int:
    from tidings.live_config import InvalidLiveConfiguration, validate

    args._target = target = target_from(args)
    live = LiveConfiguration(target)
    where = live.location()
    current, _deployment = live.deployed(where)
    document = merged(current, args)
    changed = _changed(current, document)
    try:
        validate(json.dumps(document))
    except InvalidLiveConfiguration as exc:
        _audited(args, "refused", where.profile, {"code": "invalid_configuration", **_safe(changed)})
        raise OperatorError("Not deployed: " + "; ".join(exc.problems) + ".") from None
    if not changed:
        render.say("nothing changed: that is the deployed configuration")
        return 0
    version, number = live.deploy(where, document, f"tidings config set ({len(changed)} change(s))")
    _audited(args, "ok", where.profile, {"version": version, "deployment": number, **_safe(changed)})
    if args.json:
        render.emit_json({"version": version, "deployment": number, "changed": changed, "document": document})
        return 0
    render.say(f"deployed version {version} (deployment {number}); containers use it within their TTL")
    for key, value in changed.items():
        render.say(f"  {key} = {value}")
    return 0


def _safe(changed: dict[str, str]) -> dict[str, str]:
    """Only identifier-shaped keys and values reach the audit log (a refused pair may hold anything)."""
    import re

    from tidings.audit.models import IDENTIFIER

    pattern = re.compile(IDENTIFIER)
    return {k: v for k, v in changed.items() if pattern.match(k) and pattern.match(v)}


def _show(args: argparse.Namespace) -> int:
    live = LiveConfiguration(target_from(args))
    where = live.location()
    document, deployment = live.deployed(where)
    if args.json:
        render.emit_json({"document": document, "deployment": deployment and _jsonable(deployment)})
        return 0
    if deployment is None:
        render.say("no deployment yet: every function uses its environment's settings")
        return 0
    render.say(
        f"version {deployment['ConfigurationVersion']} (deployment {deployment['DeploymentNumber']}, "
        f"{deployment.get('CompletedAt') or deployment.get('StartedAt')})"
    )
    rows = [(key, json.dumps(value)) for key, value in sorted(document.items())]
    render.table("Live configuration", ("setting", "value"), rows, empty="(empty: the defaults)")
    return 0


def _jsonable(deployment: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if hasattr(value, "isoformat") else value for key, value in deployment.items()}


def _schema(args: argparse.Namespace) -> int:
    from tidings.live_config import json_schema

    print(json.dumps(json_schema(), separators=(",", ":")))
    return 0
