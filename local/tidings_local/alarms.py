"""The template's alarms on the local system: EMF lines into moto's CloudWatch, and an alarm's value.

On AWS, CloudWatch Logs turns the EMF lines a function prints into metrics, and CloudWatch evaluates
each alarm, metric math included. moto does neither: it stores what ``PutMetricData`` sends and answers
``GetMetricData`` for plain metrics only. :func:`publish_emf` does the first part (one datum per
dimension set, with the line's own timestamp), and :func:`alarm_value` the second: it reads the alarm's
metrics back from moto over one window and computes its expression (the subset of CloudWatch's metric
math the template uses: + - * /, comparisons, ``FILL`` and ``IF``).
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b else math.nan,
}
_COMPARISONS = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
}
_MISSING = None


@dataclass(frozen=True)
class Datum:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float
    unit: str
    timestamp: datetime


def emf_data(lines: Iterable[str]) -> list[Datum]:
    """Every metric datum of the EMF records among ``lines`` (other lines are skipped)."""
    data = []
    for line in lines:
        if '"_aws"' not in line:
            continue
        try:
            record = json.loads(line[line.index("{") :])
        except ValueError:
            continue
        meta = record["_aws"]
        timestamp = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = tuple((key, str(record[key])) for key in dimension_set)
                for metric in directive["Metrics"]:
                    values = record[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        data.append(
                            Datum(
                                directive["Namespace"],
                                metric["Name"],
                                dims,
                                float(value),
                                metric.get("Unit", "None"),
                                timestamp,
                            )
                        )
    return data


def publish_emf(cloudwatch: Any, lines: Iterable[str]) -> int:
    """Put the EMF metrics of ``lines`` into (moto's) CloudWatch, as CloudWatch Logs would."""
    data = emf_data(lines)
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for datum in data:
        by_namespace.setdefault(datum.namespace, []).append(
            {
                "MetricName": datum.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in datum.dimensions],
                "Value": datum.value,
                "Unit": datum.unit,
                "Timestamp": datum.timestamp,
            }
        )
    for namespace, items in by_namespace.items():
        for start in range(0, len(items), 500):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[start : start + 500])
    return len(data)


def _queries(alarm: Mapping[str, Any], seconds: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The alarm's plain-metric queries over one window of ``seconds``, and its expression query."""
    if "Metrics" not in alarm or not alarm["Metrics"]:
        stat = alarm.get("Statistic") or alarm["ExtendedStatistic"]
        metric = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
        }
        query = {"Id": "m", "MetricStat": {"Metric": metric, "Period": seconds, "Stat": stat}}
        return [query], {"Id": "value", "Expression": "m"}
    plain, expression = [], None
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            stat = dict(query["MetricStat"], Period=seconds)
            plain.append({"Id": query["Id"], "MetricStat": stat})
        elif query.get("ReturnData", True):
            expression = query
    return plain, expression


def alarm_value(cloudwatch: Any, alarm: Mapping[str, Any], start: datetime, end: datetime) -> float | None:
    """The alarm's value over [start, end) as one evaluation period (None: no data at all)."""
    seconds = max(1, math.ceil((end - start).total_seconds()))
    plain, expression = _queries(alarm, seconds)
    answer = cloudwatch.get_metric_data(MetricDataQueries=plain, StartTime=start, EndTime=end)
    values: dict[str, float | None] = {}
    for result in answer["MetricDataResults"]:
        values[result["Id"]] = float(result["Values"][0]) if result["Values"] else _MISSING
    for query in plain:
        values.setdefault(query["Id"], _MISSING)
    if expression is None:
        return values[plain[0]["Id"]]
    return evaluate(expression["Expression"], values)


def breaching(alarm: Mapping[str, Any], value: float | None) -> bool:
    """Whether one period's value breaches (missing data is not breaching, as the template says)."""
    if value is None or math.isnan(value):
        return False
    threshold = float(alarm["Threshold"])
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[alarm["ComparisonOperator"]]


def evaluate(expression: str, values: Mapping[str, float | None]) -> float | None:
    """One period of a metric math expression; a metric without data is None (FILL replaces it)."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = walk(node.operand)
            return None if operand is None else -operand
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            return None if left is None or right is None else _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARISONS:
            left, right = walk(node.left), walk(node.comparators[0])
            if left is None or right is None:
                return None
            return 1.0 if _COMPARISONS[type(node.ops[0])](left, right) else 0.0
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [walk(arg) for arg in node.args]
            if node.func.id == "FILL" and len(args) == 2:
                return args[1] if args[0] is None else args[0]
            if node.func.id == "IF" and len(args) == 3:
                return None if args[0] is None else (args[1] if args[0] else args[2])
        raise ValueError(f"metric math not supported locally: {ast.dump(node)[:80]}")

    return walk(ast.parse(expression, mode="eval"))
