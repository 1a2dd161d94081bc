"""Which stack the operator commands act on, and one clear sentence when it cannot be reached.

Resolution, first match wins:

1. ``--local``, or no ``--stack-name`` / ``--config-env`` / ``--profile`` / ``--region`` given while
   ``tidings local up`` is running (its ``.local-state/endpoints.json``): the local system's moto
   endpoint, stack ``tidings-local``, region us-east-1, its fake credentials.
2. ``--endpoint-url`` or ``AWS_ENDPOINT_URL``: any AWS-compatible endpoint (moto, a proxy).
3. AWS: ``--stack-name``, else ``TIDINGS_STACK``, else samconfig.toml's ``stack_name`` for
   ``--config-env`` (default ``default``); region from ``--region``, else ``AWS_DEFAULT_REGION``, else the
   profile's region (``--profile`` / ``AWS_PROFILE``). boto3 reads ``AWS_DEFAULT_REGION``, not
   ``AWS_REGION``.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

LOCAL_ENDPOINTS = Path(".local-state") / "endpoints.json"
LOCAL_STACK = "tidings-local"
LOCAL_REGION = "us-east-1"
SAMCONFIG = Path("samconfig.toml")


class OperatorError(Exception):
    """Something the operator can fix, said in one sentence (never shown with a stack trace)."""


def samconfig_stack(config_env: str = "default", path: Path = SAMCONFIG) -> str | None:
    if not path.is_file():
        return None
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    env = config.get(config_env) or {}
    for command in ("global", "deploy"):
        name = (env.get(command) or {}).get("parameters", {}).get("stack_name")
        if name:
            return str(name)
    return None


def local_endpoints(path: Path = LOCAL_ENDPOINTS) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class Target:
    """A stack in a region behind an endpoint, with boto3 clients built once each."""

    stack_name: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    local: bool = False
    api_url: str | None = None
    sandboxes: dict[str, str] = field(default_factory=dict)
    #: The local system's resources, parameters and outputs, as CloudFormation would list them
    #: (``tidings local up`` writes them; None on AWS, where CloudFormation answers).
    stack: dict[str, Any] | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def session(self) -> Any:
        import boto3
        from botocore.exceptions import ProfileNotFound

        try:
            if self.local:
                return boto3.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    region_name=self.region or LOCAL_REGION,
                )
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except ProfileNotFound:
            raise OperatorError(
                f"There is no AWS profile named {self.profile!r}: pass --profile with one from "
                "~/.aws/config, or set AWS_PROFILE."
            ) from None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            if not self.session.region_name:
                raise OperatorError(no_region_message())
            try:
                self._clients[service] = self.session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
                )
            except NoRegionError:
                raise OperatorError(no_region_message()) from None
        return self._clients[service]

    def resource(self, service: str) -> Any:
        if not self.session.region_name:
            raise OperatorError(no_region_message())
        return self.session.resource(service, endpoint_url=self.endpoint_url)

    @property
    def where(self) -> str:
        if self.local:
            return f"the local system ({self.endpoint_url})"
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"stack {self.stack_name} in {self.session.region_name or '(no region)'}{at}"


def no_region_message() -> str:
    return (
        "No AWS region is set: pass --region, or set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION), "
        "or give your profile a region."
    )


def resolve(
    *,
    stack_name: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    config_env: str | None = None,
    local: bool = False,
    environ: dict[str, str] | None = None,
) -> Target:
    env = os.environ if environ is None else environ
    explicit_aws = any((stack_name, region, profile, config_env))
    endpoints = local_endpoints()
    if local or (not explicit_aws and not endpoint_url and endpoints and not env.get("TIDINGS_STACK")):
        if not endpoints:
            raise OperatorError(
                "No local system is running here: start it with `make run` (or `tidings local up`) "
                "in the project directory, or pass --stack-name for a deployed stack."
            )
        return Target(
            stack_name=stack_name or LOCAL_STACK,
            region=LOCAL_REGION,
            endpoint_url=endpoints["moto_url"],
            local=True,
            api_url=endpoints.get("api_url"),
            sandboxes=dict(endpoints.get("sandboxes") or {}),
            stack=endpoints.get("stack"),
        )
    name = stack_name or env.get("TIDINGS_STACK") or samconfig_stack(config_env or "default")
    if not name:
        raise OperatorError(
            "No stack name: pass --stack-name, set TIDINGS_STACK, or run from the project directory "
            "(samconfig.toml names the stack)."
        )
    return Target(
        stack_name=name,
        region=region or env.get("AWS_DEFAULT_REGION") or None,
        profile=profile or env.get("AWS_PROFILE") or None,
        endpoint_url=endpoint_url or env.get("AWS_ENDPOINT_URL") or None,
    )


def add_target_options(parser: Any) -> None:
    group = parser.add_argument_group("where (default: the running local system, else samconfig.toml)")
    group.add_argument(
        "--stack-name", "--stack", dest="stack_name", default=None, help="CloudFormation stack"
    )
    group.add_argument("--config-env", default=None, help="samconfig.toml environment (default, dev)")
    group.add_argument("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION)")
    group.add_argument("--profile", default=None, help="AWS profile (default: AWS_PROFILE)")
    group.add_argument("--endpoint-url", default=None, help="an AWS-compatible endpoint (AWS_ENDPOINT_URL)")
    group.add_argument("--local", action="store_true", help="the local system started by `make run`")
    parser.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    parser.add_argument("--debug", action="store_true", help=argparse_suppress())


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def target_from(args: Any) -> Target:
    return resolve(
        stack_name=args.stack_name,
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        config_env=args.config_env,
        local=args.local,
    )
