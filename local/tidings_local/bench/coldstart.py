"""Cold start: what importing each Lambda handler costs in a fresh interpreter.

Every probe is its own process, started with the function's environment from template.yaml (intrinsics
resolved to placeholder names) and fake AWS credentials. The probe installs an audit hook before the
import that records and refuses every socket connect and name lookup, so a handler that does network
I/O at import time shows up as ``network_attempts > 0`` instead of quietly reaching the internet.

Two baselines frame the handlers: a bare interpreter (the probe importing nothing) and ``import boto3``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings_local.stack.template import Template

BARE = "bare interpreter"
BOTO3 = "import boto3"

# Runs in the child. Standard library only, and the same for every target, so the baseline's own
# imports (json, resource) are paid by every row alike.
PROBE = r"""
import importlib, json, resource, sys, time

attempts = []

def refuse_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
        attempts.append(event)
        raise OSError("network I/O during import refused by the cold-start probe")

sys.addaudithook(refuse_network)
code_dir, module = sys.argv[1], sys.argv[2]
if code_dir:
    sys.path.insert(0, code_dir)
started = time.perf_counter()
error = None
if module:
    try:
        importlib.import_module(module)
    except Exception as exc:
        error = type(exc).__name__
import_seconds = time.perf_counter() - started
# VmHWM is this process's own peak; ru_maxrss would also carry the parent's peak across exec.
try:
    with open("/proc/self/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_seconds": import_seconds, "max_rss_kb": rss_kb,
                  "network_attempts": len(attempts), "error": error}))
"""

# What every probe gets besides the function's own variables: credentials that open nothing, an
# endpoint on the discard port, and no way to read a developer's real AWS profile.
FAKE_AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    # As `sam local` does: Powertools Tracer stays off without an X-Ray daemon to talk to.
    "AWS_SAM_LOCAL": "true",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}


@dataclass(frozen=True)
class Target:
    """One thing to import in a fresh process: a handler module, or a baseline."""

    name: str
    module: str  # "" imports nothing (the bare interpreter)
    code_dir: str = ""
    environment: dict[str, str] | None = None


@dataclass
class ColdStart:
    name: str
    runs: int
    process_seconds: float  # median wall time from spawn to exit
    import_seconds: float  # median time inside the child spent importing the module
    max_rss_mb: float  # median peak resident set size of the child
    network_attempts: int  # most seen in any run; anything above 0 is a bug in the handler
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runs": self.runs,
            "process_ms": round(self.process_seconds * 1000, 2),
            "import_ms": round(self.import_seconds * 1000, 2),
            "max_rss_mb": round(self.max_rss_mb, 1),
            "network_attempts": self.network_attempts,
            "error": self.error,
        }


@lru_cache(maxsize=2)
def load_bench_template(template_path: Path) -> Template:
    """The SAM-transformed template, once per run (the transform takes a second)."""
    import logging

    from tidings_local.stack.template import load_template

    # The transform's own usage metrics are never published here; its warning about that is noise.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    return load_template(template_path, stack_name="tidings-bench")


# What CloudFormation answers for Ref and GetAtt, per resource type, so settings that validate the
# shape of an ARN or a queue URL at cold start see the shape they will see on AWS.
_REF_FORMATS = {
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::Lambda::LayerVersion": "arn:aws:lambda:{region}:{account}:layer:{name}:1",
    "AWS::ApiGatewayV2::Api": "abcdef1234",
}
_ARN_FORMATS = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
}


def handler_targets(template_path: Path, only: Sequence[str] | None = None) -> list[Target]:
    """One target per Lambda function in the template, with its resolved environment."""
    from tidings_local.stack.template import ACCOUNT_ID, REGION, Resolver

    template = load_bench_template(template_path)
    unknown = sorted(set(only or ()) - set(template.functions()))
    if unknown:
        raise ValueError(f"not a function in {template_path.name}: {', '.join(unknown)}")
    resources = template.resources

    def fill(formats: dict[str, str], logical_id: str, fallback: str) -> str:
        kind = resources.get(logical_id, {}).get("Type", "")
        name = f"tidings-bench-{logical_id}"
        return formats.get(kind, fallback).format(region=REGION, account=ACCOUNT_ID, name=name)

    def ref(logical_id: str) -> str:
        return fill(_REF_FORMATS, logical_id, "{name}")

    def get_att(logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return fill(_ARN_FORMATS, logical_id, "arn:aws:bench:{region}:{account}:{name}")
        if attribute == "QueueUrl":
            return ref(logical_id)
        if attribute in ("Name", "QueueName", "TopicName"):
            return f"tidings-bench-{logical_id}"
        return f"tidings-bench-{logical_id}-{attribute}"

    resolver = Resolver(template, ref, get_att)
    targets = []
    for logical_id, resource in sorted(template.functions().items()):
        if only and logical_id not in only:
            continue
        properties = resource["Properties"]
        variables = resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
        module = properties["Handler"].rpartition(".")[0]
        environment = {key: str(value) for key, value in variables.items()}
        environment["AWS_LAMBDA_FUNCTION_NAME"] = f"tidings-bench-{logical_id}"
        environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(properties.get("MemorySize", 128))
        code_dir = template.code_dirs[logical_id]
        environment["LAMBDA_TASK_ROOT"] = str(code_dir)
        targets.append(Target(logical_id, module, str(code_dir), environment))
    return targets


def baseline_targets() -> list[Target]:
    return [Target(BARE, ""), Target(BOTO3, "boto3")]


def _probe_once(target: Target) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **FAKE_AWS_ENV, **(target.environment or {})}
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", PROBE, target.code_dir, target.module],
        capture_output=True,
        text=True,
        env=env,
        cwd=target.code_dir or None,
        check=False,
    )
    elapsed = time.perf_counter() - started
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"cold-start probe for {target.name} exited with {completed.returncode}")
    return {**json.loads(lines[-1]), "process_seconds": elapsed}


def measure(targets: Sequence[Target], runs: int) -> list[ColdStart]:
    """Probe every target ``runs`` times, round-robin so machine noise spreads over all of them.

    One discarded probe per target first: it compiles the bytecode caches, which a deployed package
    ships or the runtime keeps warm, so what is measured is importing, not compiling.
    """
    for target in targets:
        _probe_once(target)
    samples: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
    for _ in range(runs):
        for target in targets:
            samples[target.name].append(_probe_once(target))
    results = []
    for target in targets:
        seen = samples[target.name]
        results.append(
            ColdStart(
                name=target.name,
                runs=len(seen),
                process_seconds=statistics.median(s["process_seconds"] for s in seen),
                import_seconds=statistics.median(s["import_seconds"] for s in seen),
                # VmHWM (and ru_maxrss on Linux) are in KiB.
                max_rss_mb=statistics.median(s["max_rss_kb"] for s in seen) / 1024,
                network_attempts=max(s["network_attempts"] for s in seen),
                error=next((s["error"] for s in seen if s["error"]), None),
            )
        )
    return results
