"""template.yaml as data, read by the local tooling's own parser, and the AWS resources tests build from it.

Tables are created with exactly the properties the template gives them (key schema, billing mode,
indexes, time to live), so a test cannot drift from the infrastructure it stands in for.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from tidings_local.stack.template import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


@functools.cache
def _parsed() -> dict[str, Any]:
    return parse_yaml(TEMPLATE_PATH.read_text())


def sam_template() -> dict[str, Any]:
    """template.yaml as written (intrinsics as CloudFormation's long form: Ref, Fn::GetAtt, Fn::Sub)."""
    return copy.deepcopy(_parsed())


def resource_properties(logical_id: str) -> dict[str, Any]:
    return copy.deepcopy(_parsed()["Resources"][logical_id]["Properties"])


def parameter_default(name: str) -> Any:
    return _parsed()["Parameters"][name]["Default"]


def create_table(dynamodb: Any, logical_id: str, name: str) -> str:
    """Create table ``name`` on ``dynamodb`` (a boto3 client) as the template declares ``logical_id``."""
    props = resource_properties(logical_id)
    arguments: dict[str, Any] = {
        "TableName": name,
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in props:
            arguments[key] = props[key]
    dynamodb.create_table(**arguments)
    if "TimeToLiveSpecification" in props:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    return name
