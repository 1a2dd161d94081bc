"""docs/architecture.svg, drawn from template.yaml: who calls whom, what reads and writes what.

``make architecture`` writes docs/architecture.dot from the template (this module) and renders it with
Graphviz's ``dot`` (Debian's ``graphviz`` package; scripts/ensure-graphviz installs it when missing).
The picture carries the SHA-256 of the DOT source it was drawn from, so a unit test can tell, without
Graphviz, that both the source and the picture match the template.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DOT = ROOT / "docs" / "architecture.dot"
SVG = ROOT / "docs" / "architecture.svg"
STAMP = "<!-- drawn from architecture.dot sha256:{} -->"

#: Secrets and policies that mean "this function calls that provider" (the rotation function and the
#: webhook receiver read the secrets too, but to rotate and to verify signatures, not to call out).
NOT_CALLERS = {"RotateSecretFunction", "WebhookReceiverFunction"}
SECRET_PROVIDER = {"StripeSecret": "Stripe", "SendGridSecret": "SendGrid", "TwilioSecret": "Twilio"}
EXTERNAL = ("Stripe", "SendGrid", "Twilio", "Amazon SES", "Amazon SNS (SMS)")


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    return None


def _id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _short(logical_id: str) -> str:
    return logical_id.removesuffix("Function")


def graph(template: dict[str, Any]) -> str:
    resources = template["Resources"]
    kinds = {lid: r["Type"] for lid, r in resources.items()}
    functions = [lid for lid, kind in kinds.items() if kind == "AWS::Serverless::Function"]
    queues = [lid for lid, kind in kinds.items() if kind == "AWS::SQS::Queue"]
    tables = [lid for lid, kind in kinds.items() if kind == "AWS::DynamoDB::Table"]
    machines = [lid for lid, kind in kinds.items() if kind == "AWS::Serverless::StateMachine"]
    alarms = [lid for lid, kind in kinds.items() if kind == "AWS::CloudWatch::Alarm"]
    edges: set[tuple[str, str, str]] = set()  # (from, to, style)
    routes: dict[str, list[str]] = {}

    for function in functions:
        props = resources[function]["Properties"]
        for event in (props.get("Events") or {}).values():
            event_props = event.get("Properties") or {}
            if event["Type"] == "HttpApi":
                routes.setdefault(function, []).append(f"{event_props['Method']} {event_props['Path']}")
            elif event["Type"] == "SQS":
                edges.add((_ref(event_props["Queue"]) or "", function, "trigger"))
            elif event["Type"] == "Schedule":
                edges.add(("Schedule", function, "trigger"))
        for policy in props.get("Policies") or []:
            if not isinstance(policy, dict):
                continue
            for name, value in policy.items():
                if name == "DynamoDBCrudPolicy":
                    edges.add((function, _ref(value["TableName"]) or "", "data"))
                elif name == "SQSSendMessagePolicy":
                    edges.add((function, _ref(value["QueueName"]) or "", "send"))
                elif name == "AWSSecretsManagerGetSecretValuePolicy":
                    provider = SECRET_PROVIDER.get(_ref(value["SecretArn"]) or "")
                    if provider and function not in NOT_CALLERS:
                        edges.add((function, provider, "call"))
                elif name == "StepFunctionsExecutionPolicy":
                    edges.add((function, machines[0], "send"))
                elif name == "SESCrudPolicy":
                    edges.add((function, "Amazon SES", "call"))
                elif name == "Statement":
                    for statement in value:
                        actions = (
                            statement["Action"]
                            if isinstance(statement["Action"], list)
                            else [statement["Action"]]
                        )
                        if "sns:Publish" in actions:
                            edges.add((function, "Amazon SNS (SMS)", "call"))
                        if any(a.startswith("states:SendTask") for a in actions):
                            edges.add((function, machines[0], "send"))
    for machine in machines:
        for value in (resources[machine]["Properties"].get("DefinitionSubstitutions") or {}).values():
            target = _ref(value)
            if target in functions:
                edges.add((machine, target, "call"))
            elif target in queues:
                edges.add((machine, target, "send"))
    for queue in queues:
        redrive = resources[queue]["Properties"].get("RedrivePolicy")
        if redrive:
            edges.add((queue, _ref(redrive["deadLetterTargetArn"]) or "", "dead-letter"))

    lines = [
        "digraph tidings {",
        '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.9, newrank=true];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555"];',
        '  Client [label="Shop (JWT)", shape=oval, fillcolor="#eeeeee"];',
        '  Schedule [label="every 5 minutes", shape=oval, fillcolor="#eeeeee"];',
        '  subgraph cluster_api { label="HTTP API"; style=rounded; color="#999999";',
    ]
    for function, paths in sorted(routes.items()):
        label = "\\n".join(sorted(paths))
        lines.append(f'    route_{_id(function)} [label="{label}", shape=note, fillcolor="#f7f7f7"];')
    lines.append("  }")
    lines.append('  subgraph cluster_functions { label="Lambda functions"; style=rounded; color="#999999";')
    for function in functions:
        lines.append(f'    {_id(function)} [label="{_short(function)}", fillcolor="#fff3d6"];')
    lines.append("  }")
    for machine in machines:
        lines.append(
            f'  {_id(machine)} [label="{machine}\\n(Step Functions, Standard)", fillcolor="#e3d7f7"];'
        )
    lines.append('  subgraph cluster_queues { label="SQS"; style=rounded; color="#999999";')
    for queue in queues:
        dead = "DeadLetter" in queue
        fill = "#f7d7d7" if dead else "#d7ecf7"
        lines.append(f'    {_id(queue)} [label="{queue}", shape=cylinder, fillcolor="{fill}"];')
    lines.append("  }")
    lines.append('  subgraph cluster_tables { label="DynamoDB"; style=rounded; color="#999999";')
    for table in tables:
        lines.append(f'    {_id(table)} [label="{table}", shape=cylinder, fillcolor="#dff2df"];')
    lines.append("  }")
    lines.append('  subgraph cluster_providers { label="providers"; style=rounded; color="#999999";')
    for provider in EXTERNAL:
        lines.append(f'    {_id(provider)} [label="{provider}", shape=component, fillcolor="#eeeeee"];')
    lines.append("  }")
    lines.append(
        f'  Alarms [label="{len(alarms)} CloudWatch alarms\\n+ dashboard", shape=octagon, '
        'fillcolor="#ffe0e0"];'
    )
    lines.append('  AlarmTopic [label="AlarmTopic (SNS)\\n-> on-call", shape=oval, fillcolor="#ffe0e0"];')
    lines.append('  Alarms -> AlarmTopic [label="ALARM / OK"];')
    for function in sorted(routes):
        lines.append(f"  Client -> route_{_id(function)};")
        lines.append(f"  route_{_id(function)} -> {_id(function)};")
    styles = {
        "trigger": 'style=bold, color="#1f6fb2"',
        "send": 'color="#1f6fb2"',
        "data": 'style=dotted, arrowhead=none, color="#3a8f3a"',
        "call": 'color="#333333"',
        "dead-letter": 'style=dashed, color="#c03030", label="after N receives"',
    }
    for source, target, style in sorted(edges):
        if source and target:
            lines.append(f"  {_id(source)} -> {_id(target)} [{styles[style]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_source() -> str:
    from tidings_local.stack.template import parse_yaml

    return graph(parse_yaml(TEMPLATE.read_text()))


def stamp(source: str) -> str:
    return STAMP.format(hashlib.sha256(source.encode()).hexdigest())


def main() -> int:
    source = dot_source()
    DOT.write_text(source)
    svg = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, check=True).stdout  # noqa: S607
    svg = svg.replace("<svg ", f"{stamp(source)}\n<svg ", 1)
    SVG.write_text(svg)
    print(f"wrote {DOT.relative_to(ROOT)} and {SVG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
