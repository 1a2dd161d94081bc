"""Reading a template: parameters, intrinsics and deployment order (no AWS involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidings_local.stack.template import (
    Resolver,
    TemplateError,
    deployment_order,
    load_template,
    parse_parameter_overrides,
)

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "fixtures" / "template.yaml"


def test_overrides_replace_defaults_and_unknown_ones_are_refused() -> None:
    template = load_template(FIXTURE, {"Stage": "qa"})
    assert template.parameters["Stage"] == "qa"
    assert template.parameters["JwtAudience"] == "probe-api"  # default kept

    with pytest.raises(TemplateError, match="NoSuchParameter"):
        load_template(FIXTURE, {"NoSuchParameter": "x"})


def test_a_number_parameter_must_be_a_number() -> None:
    with pytest.raises(TemplateError, match="RetryIntervalSeconds must be a number"):
        load_template(FIXTURE, {"RetryIntervalSeconds": "soon"})


def test_sam_style_parameter_overrides_are_parsed() -> None:
    parsed = parse_parameter_overrides(
        ['Stage=dev Url="http://127.0.0.1:1/x"', "ParameterKey=A,ParameterValue=b"]
    )
    assert parsed == {"Stage": "dev", "Url": "http://127.0.0.1:1/x", "A": "b"}


def test_the_transform_keeps_local_code_folders_and_definitions() -> None:
    template = load_template(FIXTURE)
    # Given the SAM template, when transformed, then each function knows its CodeUri folder
    assert template.code_dirs["ProbeFunction"] == FIXTURE.parent / "functions" / "probe"
    assert template.definition_files["ProbeStateMachine"].name == "probe.asl.json"
    # and the SQS event became an event source mapping with the template's batch settings
    mapping = template.resources["BatchFunctionWork"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["Properties"]["BatchSize"] == 5


def test_intrinsics_resolve_against_parameters_and_deployed_resources() -> None:
    template = load_template(FIXTURE, {"Stage": "prod"})
    physical = {"ProbeTable": "probe-table"}
    resolver = Resolver(template, physical.__getitem__, lambda lid, attr: f"arn:{lid}:{attr}")
    fragment = {
        "name": {"Fn::Sub": "probe/${Stage}/${ProbeTable}/${ProbeTable.Arn}/${!Literal}"},
        "mode": {"Fn::If": ["IsProd", "production", "testing"]},
        "joined": {"Fn::Join": ["-", [{"Ref": "Stage"}, {"Fn::Select": [1, ["a", "b"]]}]]},
        "dropped": {"Ref": "AWS::NoValue"},
    }
    assert resolver.resolve(fragment) == {
        "name": "probe/prod/probe-table/arn:ProbeTable:Arn/${Literal}",
        "mode": "production",
        "joined": "prod-b",
    }


def test_resources_deploy_after_what_they_reference() -> None:
    template = load_template(FIXTURE)
    order = deployment_order(template.resources)
    assert order.index("WorkDeadLetterQueue") < order.index("WorkQueue")
    assert order.index("ProbeFunction") < order.index("ProbeStateMachine")
    assert order.index("WorkQueue") < order.index("BatchFunctionWork")


def test_a_dependency_cycle_is_reported() -> None:
    resources = {
        "A": {"Properties": {"x": {"Ref": "B"}}},
        "B": {"Properties": {"y": {"Fn::GetAtt": ["A", "Arn"]}}},
    }
    with pytest.raises(TemplateError, match="circular dependency"):
        deployment_order(resources)
