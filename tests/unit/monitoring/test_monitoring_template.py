"""The template's monitoring: every alarm pages someone and says what to do, every queue that holds
undeliverable work is alarmed, every function keeps its logs for a bounded time, and the alarms and the
dashboard read only metrics the code really emits (name, namespace and dimensions)."""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tidings_local import monitoring
from tidings_local.stack.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml").cfn


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in cfn["Resources"].items() if r["Type"] == kind}


# --- what the code emits, read from the source (not from monitoring.py) -------------------------------


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _names(node: ast.AST, tables: dict[str, list[str]]) -> list[str]:
    """The metric names an argument can take: a literal, or any value of a module-level dict of literals
    looked up by key (the breaker's ``_STATE_METRIC[state]``)."""
    literal = _literal(node)
    if literal is not None:
        return [literal]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return tables.get(node.value.id, [])
    return []


def _literal_tables(tree: ast.Module) -> dict[str, list[str]]:
    tables = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(statement.value, ast.Dict):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            values = [_literal(v) for v in statement.value.values]
            if all(values):
                for target in targets:
                    if isinstance(target, ast.Name):
                        tables[target.id] = values
    return tables


def emitted_metrics() -> dict[str, set[frozenset[str]]]:
    """Metric name -> the dimension sets it is published with, found by reading every deployed module.

    ``emit_metric("Name", provider=..., endpoint=...)`` publishes the full set plus the per-provider
    rollups of tidings.observability; ``metrics.add_metric(name="Name")`` in a handler publishes with
    ``service`` plus every ``metrics.add_dimension(name=...)`` of that handler.
    """
    from tidings.observability import _ROLLUPS

    found: dict[str, set[frozenset[str]]] = {}
    for path in [*ROOT.glob("functions/*/app.py"), *ROOT.glob("layers/tidings/tidings/**/*.py")]:
        tree = ast.parse(path.read_text())
        tables = _literal_tables(tree)
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        handler_dimensions = {"service"}
        for call in calls:
            if isinstance(call.func, ast.Attribute) and call.func.attr == "add_dimension":
                name = _literal(next((k.value for k in call.keywords if k.arg == "name"), None))
                if name:
                    handler_dimensions.add(name)
        for call in calls:
            func = call.func
            if isinstance(func, ast.Name) and func.id == "emit_metric" and call.args:
                dims = {k.arg for k in call.keywords if k.arg not in ("value", "unit")} | {"service"}
                sets = {frozenset(dims)}
                sets |= {frozenset({"service", *r}) for r in _ROLLUPS if set(r) <= dims}
                for name in _names(call.args[0], tables):
                    found.setdefault(name, set()).update(sets)
            elif isinstance(func, ast.Attribute) and func.attr == "add_metric":
                name = _literal(next((k.value for k in call.keywords if k.arg == "name"), None))
                if name:
                    found.setdefault(name, set()).add(frozenset(handler_dimensions))
    return found


def test_the_source_scan_finds_the_metrics_it_should():
    # A guard on the scan itself: if it found nothing, every check below would pass vacuously
    emitted = emitted_metrics()
    assert frozenset({"service", "provider"}) in emitted["ProviderCallFailed"]
    assert frozenset({"service", "provider", "endpoint", "category"}) in emitted["ProviderCallFailed"]
    assert frozenset({"service", "status"}) in emitted["NotificationFinished"]
    assert frozenset({"service", "Provider"}) in emitted["WebhookRejected"]
    assert frozenset({"service"}) in emitted["SagasNotFinal"]


# --- alarms -----------------------------------------------------------------------------------------


def test_every_alarm_pages_when_it_fires_and_when_it_clears(cfn):
    alarms = _of_type(cfn, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 30
    topic = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        assert props.get("ActionsEnabled", True) is True, logical_id
        assert props["AlarmActions"] == [topic], logical_id
        assert props["OKActions"] == [topic], logical_id


def test_the_alarm_topic_is_created_unless_one_is_given_and_can_mail_someone(cfn):
    resources = cfn["Resources"]
    assert resources["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert cfn["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_every_alarm_says_what_to_do_and_links_its_operations_section(cfn):
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("## ")
    }
    for logical_id, alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").items():
        description = alarm["Properties"]["AlarmDescription"]
        assert len(description) <= 1024, logical_id
        assert re.search(r"\b(Look|look|Fix|Raise|redrive)\b", description), logical_id
        (anchor,) = re.findall(r"docs/operations\.md#([a-z0-9-]+)", description)
        assert anchor in anchors, f"{logical_id}: docs/operations.md has no section #{anchor}"


def test_every_threshold_is_a_template_parameter(cfn):
    for logical_id, alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").items():
        threshold = alarm["Properties"]["Threshold"]
        assert set(threshold) == {"Ref"}, logical_id
        assert threshold["Ref"] in cfn["Parameters"], logical_id


def _alarmed_queues(cfn: dict[str, Any]) -> dict[str, set[str]]:
    """Queue logical id -> the SQS metrics an alarm watches on it."""
    watched: dict[str, set[str]] = {}
    for alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("Namespace") != "AWS/SQS":
            continue
        for dimension in props["Dimensions"]:
            if dimension["Name"] == "QueueName":
                queue = dimension["Value"]["Fn::GetAtt"][0]
                watched.setdefault(queue, set()).add(props["MetricName"])
    return watched


def test_every_dead_letter_queue_and_the_sms_outage_queue_is_alarmed(cfn):
    queues = _of_type(cfn, "AWS::SQS::Queue")
    dead_letter_targets = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    # A DLQ the saga writes to directly (no redrive policy points at it) is one by its name
    dead_letter_queues = dead_letter_targets | {lid for lid in queues if "DeadLetter" in lid}
    assert len(dead_letter_queues) == 7  # the five of the saga and webhooks, the two of the status events
    watched = _alarmed_queues(cfn)
    for queue in dead_letter_queues:
        assert "ApproximateNumberOfMessagesVisible" in watched.get(queue, set()), queue
    assert "ApproximateAgeOfOldestMessage" in watched["SmsOutageQueue"]


def test_providers_have_error_rate_latency_breaker_and_headroom_alarms(cfn):
    alarms = _of_type(cfn, "AWS::CloudWatch::Alarm")
    for provider in ("stripe", "sendgrid", "twilio", "ses", "sns"):
        watched = set()
        for alarm in alarms.values():
            for metric, dims in _alarm_metrics(alarm["Properties"]):
                if dims.get("provider") == provider:
                    watched.add(metric)
        assert {
            "ProviderCallFailed",
            "ProviderCallSucceeded",
            "ProviderLatency",
            "CircuitOpened",
            "RateLimitRemaining",
        } <= watched, provider


def test_rates_are_computed_with_metric_math_not_raw_counts(cfn):
    alarms = _of_type(cfn, "AWS::CloudWatch::Alarm")
    for logical_id in [lid for lid in alarms if lid.endswith(("ErrorRateAlarm", "WebhookRejectionAlarm"))]:
        metrics = alarms[logical_id]["Properties"]["Metrics"]
        (returned,) = [m for m in metrics if m.get("ReturnData")]
        expression = returned["Expression"]
        text = expression["Fn::Sub"] if isinstance(expression, dict) else expression
        assert "100 *" in text, logical_id
        assert "/" in text, logical_id


def _alarm_metrics(props: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if "MetricName" in props:
        return [(props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])})]
    out = []
    for metric in props.get("Metrics", []):
        if "MetricStat" in metric:
            m = metric["MetricStat"]["Metric"]
            out.append((m["MetricName"], {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}))
    return out


def _alarm_metrics_with_namespace(props: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    if "MetricName" in props:
        return [(props["Namespace"], *_alarm_metrics(props)[0])]
    return [
        (m["MetricStat"]["Metric"]["Namespace"], *pair)
        for m, pair in zip(
            [m for m in props.get("Metrics", []) if "MetricStat" in m], _alarm_metrics(props), strict=True
        )
    ]


def test_alarms_read_metrics_the_code_emits_with_those_dimensions(cfn):
    emitted = emitted_metrics()
    for logical_id, alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").items():
        for namespace, name, dims in _alarm_metrics_with_namespace(alarm["Properties"]):
            if namespace.startswith("AWS/"):
                continue
            assert namespace == _namespace(), logical_id
            assert name in emitted, f"{logical_id}: no code emits {name}"
            assert frozenset(dims) in emitted[name], f"{logical_id}: {name} is not emitted with {set(dims)}"
            assert dims.get("service", _service()) == _service(), logical_id


# --- the dashboard ----------------------------------------------------------------------------------


@functools.cache
def _globals() -> dict[str, str]:
    # What every function's Powertools reads: the namespace and the service dimension's value
    sam = load_template(ROOT / "template.yaml").sam
    return sam["Globals"]["Function"]["Environment"]["Variables"]


def _namespace() -> str:
    return _globals()["POWERTOOLS_METRICS_NAMESPACE"]


def _service() -> str:
    return _globals()["POWERTOOLS_SERVICE_NAME"]


def _dashboard_body(cfn: dict[str, Any]) -> dict[str, Any]:
    (dashboard,) = _of_type(cfn, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body)


def test_the_dashboard_shows_only_metrics_the_code_emits(cfn):
    emitted = emitted_metrics()
    body = _dashboard_body(cfn)
    checked = searched = 0
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            head = [item for item in row if not isinstance(item, dict)]
            if not head:  # an expression row: a SEARCH names its metric and dimension keys
                for match in re.finditer(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"", row[0]["expression"]):
                    namespace, *keys = match.group(1).split(",")
                    assert namespace == _namespace()
                    assert frozenset(keys) in emitted[match.group(2)], match.group(0)
                    searched += 1
                continue
            namespace, name, *pairs = head
            if namespace.startswith("AWS/"):
                continue
            dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
            assert namespace == _namespace(), widget["properties"]["title"]
            assert name in emitted, f"{widget['properties']['title']}: no code emits {name}"
            assert frozenset(dims) in emitted[name], f"{name} is not emitted with {set(dims)}"
            assert dims["service"] == _service()
            checked += 1
    assert checked > 50
    assert searched == 5


def test_the_dashboard_covers_what_an_operator_looks_for(cfn):
    titles = " | ".join(w["properties"].get("title", "") for w in _dashboard_body(cfn)["widgets"])
    for provider in ("stripe", "sendgrid", "twilio", "ses", "sns"):
        for part in ("calls", "errors by category", "latency", "circuit breaker", "rate-limit headroom"):
            assert f"{provider}: {part}" in titles
    for title in ("Sagas by final status", "Fallbacks used", "Queue depths", "Webhooks", "cost per hour"):
        assert title in titles


# --- logs -------------------------------------------------------------------------------------------


def test_every_function_logs_to_its_own_group_with_a_retention(cfn):
    resources = cfn["Resources"]
    functions = _of_type(cfn, "AWS::Lambda::Function")
    assert len(functions) >= 15
    for logical_id, function in functions.items():
        props = function["Properties"]
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        group = resources[group_id]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        # Named as Lambda names it, so the console and `aws logs tail /aws/lambda/<name>` find it
        assert group["Properties"]["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{logical_id}"
        }
        assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{logical_id}"}


def test_the_saga_logs_executions_without_their_data_by_default(cfn):
    (machine,) = _of_type(cfn, "AWS::StepFunctions::StateMachine").values()
    logging = machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
    assert logging["IncludeExecutionData"] == {"Ref": "StateMachineLogExecutionData"}
    assert cfn["Parameters"]["StateMachineLogExecutionData"]["Default"] == "false"
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert cfn["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_the_http_api_writes_access_logs_without_personal_data(cfn):
    (stage,) = [
        r
        for r in _of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
        if "AccessLogSettings" in r["Properties"]
    ]
    settings = stage["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert cfn["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    record = json.loads(settings["Format"])
    assert "requestId" in record
    assert not any(field in settings["Format"] for field in ("sourceIp", "userAgent", "authorization"))


# --- the generated block is what monitoring.py renders --------------------------------------------------


def test_the_monitoring_block_in_the_template_is_fresh():
    text = (ROOT / "template.yaml").read_text()
    assert monitoring.rewrite(text) == text, "run `make monitoring`"
