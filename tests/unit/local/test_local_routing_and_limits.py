"""How the local API picks a route, and what the deployer refuses rather than deploy differently."""

import json
import re

import pytest

from tidings.resilience.timing import FakeClock
from tidings_local.stack.api_gateway import RouteThrottles, compile_route, match_route
from tidings_local.stack.deployer import Deployer, HttpApi, Route, Throttle
from tidings_local.stack.template import TemplateError, load_template

pytestmark = pytest.mark.unit

FUNCTION = "arn:aws:lambda:eu-west-1:123456789012:function:f"


def _routes(*paths: str, method: str = "GET"):
    api = HttpApi("Api", "abc123")
    return [compile_route(api, Route(method, path, f"{FUNCTION}-{i}", None)) for i, path in enumerate(paths)]


@pytest.mark.parametrize(
    ("path", "expected", "params"),
    [
        ("/notifications/bulk/b-1", "/notifications/bulk/{bulk_id}", {"bulk_id": "b-1"}),
        ("/notifications/n-1", "/notifications/{notification_id}", {"notification_id": "n-1"}),
        (
            "/notifications/n-1/timeline",
            "/notifications/{notification_id}/timeline",
            {"notification_id": "n-1"},
        ),
        ("/notifications/n%201", "/notifications/{notification_id}", {"notification_id": "n 1"}),
        ("/files/a/b/c.txt", "/files/{path+}", {"path": "a/b/c.txt"}),
        ("/files/index", "/files/index", {}),
    ],
)
def test_the_most_specific_route_wins(path, expected, params):
    routes = _routes(
        "/files/{path+}",
        "/files/index",
        "/notifications/{notification_id}",
        "/notifications/{notification_id}/timeline",
        "/notifications/bulk/{bulk_id}",
    )

    compiled, found = match_route(routes, "GET", path)

    assert compiled.route.path == expected
    assert found == params


def test_no_route_for_another_method_or_path():
    routes = _routes("/notifications", method="POST")

    assert match_route(routes, "GET", "/notifications") is None
    assert match_route(routes, "POST", "/elsewhere") is None
    assert match_route(routes, "POST", "/notifications/")[0].route.path == "/notifications"


def _deploy(tmp_path, resources):
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
    # No request reaches this URL: every refusal happens before the first AWS call.
    Deployer(load_template(path), "http://127.0.0.1:9").deploy()


def _api(method: str, path: str = "/items"):
    integration = {
        "uri": f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{FUNCTION}/invocations"
    }
    body = {"openapi": "3.0.1", "paths": {path: {method: {"x-amazon-apigateway-integration": integration}}}}
    return {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Body": body}}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (
            {
                "T": {
                    "Type": "AWS::DynamoDB::Table",
                    "Properties": {"AttributeDefinitions": [], "KeySchema": []},
                }
            },
            "T: only on-demand tables",
        ),
        ({"Api": _api("x-amazon-apigateway-any-method")}, "is not served locally"),
        ({"Api": _api("get", "$default")}, "is not served locally"),
        (
            {
                "Api": _api("get"),
                "Stage": {
                    "Type": "AWS::ApiGatewayV2::Stage",
                    "Properties": {"ApiId": "x", "StageName": "prod"},
                },
            },
            "Stage: only the $default stage",
        ),
        (
            {"Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"DefinitionString": "{}"}}},
            "Sm: no definition file",
        ),
    ],
)
def test_what_would_run_differently_here_stops_the_deploy_naming_the_resource(tmp_path, resources, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        _deploy(tmp_path, resources)


def test_the_stage_throttling_is_read_from_the_template_and_applied_per_route(tmp_path):
    # Given the stage of the template's HTTP API as the SAM transform writes it
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}))
    deployer = Deployer(load_template(path), "http://127.0.0.1:9")
    api_id = deployer._http_api("Api", _api("post")["Properties"]).ref
    deployer._http_api_stage(
        "Stage",
        {
            "ApiId": api_id,
            "StageName": "$default",
            "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200},
            "RouteSettings": {"POST /items": {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 2}},
        },
    )
    api = deployer.http_apis["Api"]
    assert api.route_throttles == {"POST /items": Throttle(rate=1.0, burst=2)}
    assert api.default_throttle == Throttle(rate=100.0, burst=200)

    # When requests arrive faster than the route's rate, on a clock that only moves when told
    clock = FakeClock()
    throttles = RouteThrottles(clock=clock)
    admitted = [throttles.admit(api, "POST /items") for _ in range(3)]
    # Then the burst passes, the next is throttled (the local gateway answers 429), and a second refills one
    assert admitted == [True, True, False]
    assert throttles.admit(api, "GET /other")  # the default settings: its own bucket
    clock.advance(1)
    assert throttles.admit(api, "POST /items")
    assert not throttles.admit(api, "POST /items")
