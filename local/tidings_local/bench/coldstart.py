"""Cold start: what importing each Lambda handler costs in a fresh interpreter, against its floor.

Every probe is its own process, started with the function's environment from template.yaml as deployed
(intrinsics resolved to placeholder names, the X-Ray variables of ``Tracing: Active``, so the Powertools
Tracer is on as in production) and fake AWS credentials. The probe installs an audit hook before the
import that records and refuses every socket connect, datagram and name lookup, so a handler that does
network I/O at import time shows up as ``network_attempts > 0`` instead of quietly reaching the internet.

Each handler is measured against its *floor* (:data:`FLOORS`): a bare interpreter importing boto3,
building one client of the handler's main AWS service and importing Powertools' Logger, plus httpx
when the handler calls a provider over HTTP. That is what any Python Lambda doing the same job
imports; everything above it is what Tidings adds.

The probes run in the interpreter they are given: ``make bench`` gives one whose site-packages hold
the layer's packages only (what the deployed layer holds), so nothing of the development environment
(rich behind httpx, awscrt behind botocore, requests for the tracer to patch) is counted.
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
TOP_IMPORTS = 8  # -X importtime entries reported per handler

# Runs in the child. Standard library only, and the same for every target, so the baseline's own
# imports (json, resource) are paid by every row alike.
PROBE = r"""
import importlib, json, resource, sys, time

attempts = []

def refuse_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
                 "socket.sendmsg"):
        attempts.append(event)
        raise OSError("network I/O during import refused by the cold-start probe")

sys.addaudithook(refuse_network)
code_dir, module, statement, marginal = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if code_dir:
    sys.path.insert(0, code_dir)
started = time.perf_counter()
error = None
marginal_seconds = None
try:
    if module:
        importlib.import_module(module)
    if statement:
        exec(compile(statement, "<floor>", "exec"), {})
    if marginal:
        marginal_started = time.perf_counter()
        exec(compile(marginal, "<marginal>", "exec"), {})
        marginal_seconds = time.perf_counter() - marginal_started
except Exception as exc:
    error = type(exc).__name__
import_seconds = time.perf_counter() - started
# VmHWM is this process's own peak; ru_maxrss would also carry the parent's peak across exec.
try:
    with open("/proc/self/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_seconds": import_seconds, "marginal_seconds": marginal_seconds,
                  "max_rss_kb": rss_kb,
                  "network_attempts": len(attempts), "error": error,
                  "xray_loaded": "aws_xray_sdk.core" in sys.modules}))
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
    # No AWS_SAM_LOCAL: with it Powertools turns its Tracer off, which no deployed function does.
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}


# What Lambda adds for ``Tracing: Active``: the X-Ray daemon's address (the probe refuses the datagram
# a segment would be) and what to do outside a segment.
XRAY_ENV = {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}


@dataclass(frozen=True)
class Floor:
    """What any Lambda doing a handler's job imports: boto3, one client of ``service``, Powertools'
    Logger, and httpx when it calls a provider."""

    service: str
    httpx: bool

    @property
    def name(self) -> str:
        return f"floor: {self.service}" + (" + httpx" if self.httpx else "")

    @property
    def statement(self) -> str:
        lines = [
            "import boto3",
            f"boto3.client({self.service!r})",
            "from aws_lambda_powertools import Logger",
        ]
        return "\n".join([*lines, "import httpx"] if self.httpx else lines)


DYNAMODB = Floor("dynamodb", httpx=False)
DYNAMODB_HTTP = Floor("dynamodb", httpx=True)

#: Each function's floor: its main AWS service (the one its work is built on, from its policies and
#: its composition root) and whether it calls a provider over HTTP. A function missing here is refused
#: by the bench (tests check the table against template.yaml).
FLOORS: dict[str, Floor] = {
    # saga steps that write the notification table only (a task token, the outcome)
    "AwaitChargeReconciliationFunction": DYNAMODB,
    "AwaitPaymentActionFunction": DYNAMODB,
    "RecordOutcomeFunction": DYNAMODB,
    # saga steps that call Stripe, SendGrid or Twilio and record the result in the notification table
    "ChargePaymentFunction": DYNAMODB_HTTP,
    "CancelPaymentFunction": DYNAMODB_HTTP,
    "RefundPaymentFunction": DYNAMODB_HTTP,
    "SendEmailFunction": DYNAMODB_HTTP,
    "SendSmsFunction": DYNAMODB_HTTP,
    "RetryDeliveryFunction": DYNAMODB_HTTP,  # re-sends a parked e-mail or SMS
    "ReconcilePaymentFunction": DYNAMODB_HTTP,  # asks Stripe about an uncertain charge
    "ReconcileSweepFunction": DYNAMODB_HTTP,  # Stripe's undelivered events, Twilio's statuses
    # the notify API: the notification table, and Stripe for the shop's refunds
    "NotifyApiFunction": DYNAMODB_HTTP,
    # applies provider events to the notification table; refunds through Stripe when one is due
    "WebhookProcessorFunction": DYNAMODB_HTTP,
    # verifies a provider's signature and enqueues the delivery: no provider call
    "WebhookReceiverFunction": Floor("sqs", httpx=False),
    # starts one execution per item of a bulk request
    "StartBulkFunction": Floor("stepfunctions", httpx=False),
    # lists executions left behind
    "SweepSagasFunction": Floor("stepfunctions", httpx=False),
    # the notification table's stream to EventBridge
    "PublishStatusEventsFunction": Floor("events", httpx=False),
    # posts the signed status callback to the shop's URL (over httpx) with its key from Secrets Manager
    "SendCallbackFunction": Floor("secretsmanager", httpx=True),
    # rotates the provider keys in Secrets Manager through the providers' own APIs
    "RotateSecretFunction": Floor("secretsmanager", httpx=True),
}


@dataclass(frozen=True)
class Target:
    """One thing to import in a fresh process: a handler module, a floor, or a baseline."""

    name: str
    module: str  # "" imports nothing (the bare interpreter, a floor)
    code_dir: str = ""
    environment: dict[str, str] | None = None
    statement: str = ""  # run after importing ``module`` (a floor's imports and client)
    # Run last and also timed on its own: what a process already holding ``module`` and ``statement``
    # pays for it (``import_seconds`` still counts everything).
    marginal: str = ""
    python: str = sys.executable
    floor: str | None = None  # a handler's floor target


@dataclass
class ColdStart:
    name: str
    runs: int
    # Times are the fastest run's: other work on a shared machine only ever adds time, so the minimum
    # is the steadiest estimate of what the import itself costs (the medians are kept beside them).
    process_seconds: float  # wall time from spawn to exit
    import_seconds: float  # time inside the child spent importing the module
    max_rss_mb: float  # median peak resident set size of the child
    network_attempts: int  # most seen in any run; anything above 0 is a bug in the handler
    error: str | None
    xray_loaded: bool = False  # the X-Ray SDK was imported (the Powertools Tracer is on)
    floor: str | None = None
    process_median_seconds: float = 0.0
    import_median_seconds: float = 0.0
    # The target's ``marginal`` statement alone (fastest run's), None for a target without one.
    marginal_seconds: float | None = None
    marginal_median_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        marginal = {}
        if self.marginal_seconds is not None and self.marginal_median_seconds is not None:
            marginal = {
                "marginal_ms": round(self.marginal_seconds * 1000, 2),
                "marginal_median_ms": round(self.marginal_median_seconds * 1000, 2),
            }
        return {
            "name": self.name,
            "runs": self.runs,
            "process_ms": round(self.process_seconds * 1000, 2),
            "import_ms": round(self.import_seconds * 1000, 2),
            "process_median_ms": round(self.process_median_seconds * 1000, 2),
            "import_median_ms": round(self.import_median_seconds * 1000, 2),
            **marginal,
            "max_rss_mb": round(self.max_rss_mb, 1),
            "network_attempts": self.network_attempts,
            "error": self.error,
            "xray_loaded": self.xray_loaded,
            "floor": self.floor,
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


def handler_targets(
    template_path: Path, only: Sequence[str] | None = None, python: str = sys.executable
) -> list[Target]:
    """One target per Lambda function in the template, with its environment as deployed."""
    from tidings_local.stack.template import ACCOUNT_ID, REGION, Resolver

    template = load_bench_template(template_path)
    unknown = sorted(set(only or ()) - set(template.functions()))
    if unknown:
        raise ValueError(f"not a function in {template_path.name}: {', '.join(unknown)}")
    floorless = sorted(set(template.functions()) - set(FLOORS))
    if floorless:
        raise ValueError(f"no floor in tidings_local.bench.coldstart.FLOORS for: {', '.join(floorless)}")
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
        if (properties.get("TracingConfig") or {}).get("Mode") == "Active":
            environment = {**XRAY_ENV, **environment}
        environment["AWS_LAMBDA_FUNCTION_NAME"] = f"tidings-bench-{logical_id}"
        environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(properties.get("MemorySize", 128))
        code_dir = template.code_dirs[logical_id]
        # Set in every Lambda container; Powertools keeps its Tracer off where it is missing.
        environment["LAMBDA_TASK_ROOT"] = str(code_dir)
        targets.append(
            Target(
                logical_id, module, str(code_dir), environment, python=python, floor=FLOORS[logical_id].name
            )
        )
    return targets


def baseline_targets(handlers: Sequence[Target] = (), python: str = sys.executable) -> list[Target]:
    """The bare interpreter, and each floor the given handlers stand on (once, however many share it)."""
    floors = {floor.name: floor for floor in FLOORS.values()}
    needed = sorted({target.floor for target in handlers if target.floor})
    return [Target(BARE, "", python=python)] + [
        Target(name, "", statement=floors[name].statement, python=python) for name in needed
    ]


def _probe_command(target: Target, *flags: str) -> tuple[list[str], dict[str, str]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **FAKE_AWS_ENV, **(target.environment or {})}
    command = [target.python, *flags, "-c", PROBE, target.code_dir, target.module, target.statement]
    return [*command, target.marginal], env


def _probe_once(target: Target) -> dict[str, Any]:
    command, env = _probe_command(target)
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and probe
        command, capture_output=True, text=True, env=env, cwd=target.code_dir or None, check=False
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
        marginals = [s["marginal_seconds"] for s in seen if s.get("marginal_seconds") is not None]
        results.append(
            ColdStart(
                name=target.name,
                runs=len(seen),
                process_seconds=min(s["process_seconds"] for s in seen),
                import_seconds=min(s["import_seconds"] for s in seen),
                process_median_seconds=statistics.median(s["process_seconds"] for s in seen),
                import_median_seconds=statistics.median(s["import_seconds"] for s in seen),
                # VmHWM (and ru_maxrss on Linux) are in KiB.
                max_rss_mb=statistics.median(s["max_rss_kb"] for s in seen) / 1024,
                network_attempts=max(s["network_attempts"] for s in seen),
                error=next((s["error"] for s in seen if s["error"]), None),
                xray_loaded=any(s.get("xray_loaded") for s in seen),
                floor=target.floor,
                marginal_seconds=min(marginals) if marginals else None,
                marginal_median_seconds=statistics.median(marginals) if marginals else None,
            )
        )
    return results


def _importtime_entries(stderr: str) -> list[tuple[int, str, float]]:
    """``-X importtime`` lines as (depth, module, cumulative ms), in the order printed."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        entries.append((depth, name.strip(), int(cumulative) / 1000))
    return entries


def import_costs(target: Target, top: int = TOP_IMPORTS) -> dict[str, Any]:
    """The ``top`` largest cumulative costs under ``target``'s import (``python -X importtime``, one run,
    not part of the timed medians)."""
    command, env = _probe_command(target, "-X", "importtime")
    completed = subprocess.run(  # noqa: S603 - our own interpreter and probe
        command, capture_output=True, text=True, env=env, cwd=target.code_dir or None, check=False
    )
    return {"name": target.name, **top_import_costs(completed.stderr, target.module, top)}


def top_import_costs(stderr: str, module: str, top: int = TOP_IMPORTS) -> dict[str, Any]:
    """From a probe's ``-X importtime`` output: the modules ``module``'s import spends its time in.

    Only what the import pulled in counts: what is printed after the probe's own ``resource`` (the
    interpreter's start-up and the probe's modules come first), ``module`` itself excepted. Entries
    nest (a package's cost includes what it imports); one that is 90% or more of an entry already
    listed or left out says nothing that entry does not, and is left out too.
    """
    entries = _importtime_entries(stderr)
    start = next((i for i, entry in enumerate(entries) if entry[1] == "resource"), -1) + 1
    own = entries[start:]
    total = sum(ms for depth, _name, ms in own if depth == 0)
    # A module is printed after what it imported: an entry's parent is the next one less indented.
    parent: dict[int, int] = {}
    open_children: list[int] = []
    for index, (depth, _name, _ms) in enumerate(own):
        while open_children and own[open_children[-1]][0] > depth:
            parent[open_children.pop()] = index
        open_children.append(index)
    picked: list[int] = []
    shown: set[int] = set()  # picked, or standing in for its parent
    names: set[str] = {module}  # a module printed twice (a failed import retried) is listed once
    for index in sorted(range(len(own)), key=lambda i: own[i][2], reverse=True):
        if len(picked) == top:
            break
        up = parent.get(index)
        shown.add(index)
        if own[index][1] in names or (up in shown and own[index][2] >= 0.9 * own[up][2]):
            continue
        picked.append(index)
        names.add(own[index][1])
    return {
        "total_ms": round(total, 1),
        "top": [{"module": own[i][1], "cumulative_ms": round(own[i][2], 1)} for i in picked],
    }
