"""`tidings cost`: what the finished sagas cost, from their execution histories and the sandboxes' logs.

tidings cost --local                      # every finished saga of the running local system
tidings cost --local --last 100 --json    # the 100 newest, as JSON
tidings cost --local --prices my.toml     # other unit prices (same keys as cost/prices.toml)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tidings_local.cost import load_prices
from tidings_local.cost.report import SagaUnits, add_provider_requests, render, summarize, units_from_history

PROVIDERS = ("stripe", "sendgrid", "twilio")


def register(subparsers: argparse._SubParsersAction) -> None:
    from tidings_ops.target import add_target_options

    cost = subparsers.add_parser(
        "cost", help="cost per notification, provider and final status (docs/costs.md)"
    )
    add_target_options(cost)
    cost.add_argument("--last", type=int, default=None, metavar="N", help="only the N newest finished sagas")
    cost.add_argument(
        "--prices", type=Path, default=None, help="unit prices (TOML, keys as cost/prices.toml)"
    )
    cost.set_defaults(func=_cost)


def collect(
    stepfunctions: Any,
    lambda_client: Any,
    state_machine_arn: str,
    requests: dict[str, list[dict[str, Any]]],
    last: int | None = None,
) -> list[SagaUnits]:
    """The units of every finished execution (newest first), its status read from the saga's output."""
    memory: dict[str, int] = {}
    executions = []
    for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        executions += [e for e in page["executions"] if e["status"] != "RUNNING"]
    executions.sort(key=lambda e: e["startDate"], reverse=True)
    units = []
    for execution in executions[:last]:
        described = stepfunctions.describe_execution(executionArn=execution["executionArn"])
        output = json.loads(described.get("output") or "{}") or {}
        status = output.get("status") or described["status"].lower()
        events = []
        for page in stepfunctions.get_paginator("get_execution_history").paginate(
            executionArn=execution["executionArn"]
        ):
            events += page["events"]
        for event in events:
            details = event.get("taskScheduledEventDetails") or {}
            if details.get("resourceType") == "lambda":
                name = str(json.loads(details.get("parameters") or "{}").get("FunctionName", "")).rsplit(
                    ":", 1
                )[-1]
                if name and name not in memory:
                    memory[name] = int(
                        lambda_client.get_function_configuration(FunctionName=name)["MemorySize"]
                    )
        saga = units_from_history(execution["name"], status, events, memory)
        units.append(add_provider_requests(saga, requests))
    return units


def _cost(args: argparse.Namespace) -> int:
    from tidings_local.sandboxes import SandboxClient
    from tidings_ops.stack import StackResources
    from tidings_ops.target import target_from

    target = target_from(args)
    requests = {}
    for provider in PROVIDERS:
        url = target.sandboxes.get(provider)
        requests[provider] = SandboxClient(url).requests() if url else []
    units = collect(
        target.client("stepfunctions"),
        target.client("lambda"),
        StackResources(target).state_machine_arn,
        requests,
        args.last,
    )
    summary = summarize(units, load_prices(args.prices))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(render(summary))
    return 0
