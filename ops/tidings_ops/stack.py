"""A stack's resources by logical id: CloudFormation's own list on AWS, the local naming otherwise.

On AWS (and on any endpoint with the stack in CloudFormation) ``ListStackResources`` maps each logical
id (``NotificationsTable``, ``EmailDeadLetterQueue``, ``NotificationSagaStateMachine``) to what ``Ref``
returns, and ``DescribeStacks`` gives the parameters the stack was deployed with and its outputs. The
local system deploys the template without CloudFormation: ``tidings local up`` writes the same three
lists into ``.local-state/endpoints.json`` (``Target.stack``); without them, resources named
``<stack>-<LogicalId>`` are found by listing tables, queues and state machines. Everything after the
lookup is the same boto3 call on both.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from tidings_ops.errors_text import aws_call
from tidings_ops.target import OperatorError, Target

TABLES = (
    "NotificationsTable",
    "IdempotencyTable",
    "CircuitBreakerTable",
    "RateLimitTable",
    "WebhookEventsTable",
    "AuditTable",
)
STATE_MACHINE = "NotificationSagaStateMachine"


class StackResources:
    def __init__(self, target: Target) -> None:
        self.target = target

    @cached_property
    def _listed(self) -> dict[str, tuple[str, str]] | None:
        """logical id -> (resource type, physical id), or None when nothing lists them."""
        from botocore.exceptions import ClientError

        if self.target.stack is not None:
            return {
                logical_id: (str(r["type"]), str(r["id"]))
                for logical_id, r in (self.target.stack.get("resources") or {}).items()
            }
        if self.target.local:
            return None
        client = self.target.client("cloudformation")
        found: dict[str, tuple[str, str]] = {}
        try:
            with aws_call(self.target, "CloudFormation ListStackResources"):
                for page in client.get_paginator("list_stack_resources").paginate(
                    StackName=self.target.stack_name
                ):
                    for resource in page["StackResourceSummaries"]:
                        found[resource["LogicalResourceId"]] = (
                            resource.get("ResourceType", ""),
                            resource.get("PhysicalResourceId", ""),
                        )
        except ClientError as exc:  # aws_call re-raises only "does not exist"
            if "does not exist" not in str(exc):
                raise
            return None
        return found

    @cached_property
    def _cloudformation(self) -> dict[str, str] | None:
        listed = self._listed
        return None if listed is None else {k: v[1] for k, v in listed.items()}

    def of_type(self, resource_type: str) -> dict[str, str]:
        """The stack's resources of one type (``AWS::CloudWatch::Alarm``): logical id -> physical id."""
        listed = self._listed
        if listed is None:
            raise OperatorError(self._no_listing())
        return {k: v[1] for k, v in sorted(listed.items()) if v[0] == resource_type}

    def _no_listing(self) -> str:
        if self.target.local:
            return (
                'The local system did not list its stack (.local-state/endpoints.json has no "stack"): '
                "restart `make run`."
            )
        return f"There is no stack {self.target.stack_name} on {self.target.where}: is --stack-name right?"

    @cached_property
    def _description(self) -> dict[str, dict[str, str]]:
        from botocore.exceptions import ClientError

        if self.target.stack is not None:
            return {
                "parameters": dict(self.target.stack.get("parameters") or {}),
                "outputs": dict(self.target.stack.get("outputs") or {}),
            }
        if self.target.local:
            raise OperatorError(self._no_listing())
        try:
            with aws_call(self.target, "CloudFormation DescribeStacks"):
                stacks = self.target.client("cloudformation").describe_stacks(
                    StackName=self.target.stack_name
                )["Stacks"]
        except ClientError:  # "does not exist"
            raise OperatorError(self._no_listing()) from None
        stack = stacks[0] if stacks else {}
        return {
            "parameters": {
                p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
                for p in stack.get("Parameters", [])
            },
            "outputs": {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        }

    @property
    def parameters(self) -> dict[str, str]:
        """The parameter values the stack was deployed with."""
        return self._description["parameters"]

    @property
    def outputs(self) -> dict[str, str]:
        return self._description["outputs"]

    def physical_id(self, logical_id: str) -> str:
        listed = self._cloudformation
        if listed is not None:
            if logical_id not in listed:
                raise OperatorError(f"Stack {self.target.stack_name} has no resource {logical_id}.")
            value = listed[logical_id]
            if logical_id.endswith("Queue") and not value.startswith("http"):
                with aws_call(self.target, "SQS GetQueueUrl"):
                    value = self.target.client("sqs").get_queue_url(QueueName=value)["QueueUrl"]
            return value
        return self._by_name(logical_id)

    def _by_name(self, logical_id: str) -> str:
        prefix = f"{self.target.stack_name}-{logical_id}"

        def ours(name: str) -> bool:
            return name == prefix or name.startswith(prefix + "-")

        if logical_id.endswith("Queue"):
            with aws_call(self.target, "SQS ListQueues"):
                urls = self.target.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
            matches = [url for url in urls if ours(url.rsplit("/", 1)[-1])]
        elif logical_id.endswith("StateMachine"):
            client = self.target.client("stepfunctions")
            with aws_call(self.target, "Step Functions ListStateMachines"):
                machines = [
                    machine
                    for page in client.get_paginator("list_state_machines").paginate()
                    for machine in page["stateMachines"]
                ]
            matches = [machine["stateMachineArn"] for machine in machines if ours(machine["name"])]
        else:
            client = self.target.client("dynamodb")
            with aws_call(self.target, "DynamoDB ListTables"):
                names = [
                    name
                    for page in client.get_paginator("list_tables").paginate()
                    for name in page["TableNames"]
                ]
            matches = [name for name in names if ours(name)]
        if len(matches) != 1:
            raise OperatorError(
                f"No {logical_id} of stack {self.target.stack_name} on {self.target.where} "
                f"({len(matches)} found): is --stack-name right?"
            )
        return matches[0]

    # --- what the commands use -----------------------------------------------------------------
    @cached_property
    def notifications_table(self) -> Any:
        return self.target.resource("dynamodb").Table(self.physical_id("NotificationsTable"))

    @cached_property
    def state_machine_arn(self) -> str:
        return self.physical_id(STATE_MACHINE)
