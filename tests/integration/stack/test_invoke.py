"""Functions run in their own worker processes, with the template's environment, like Lambda containers."""

from __future__ import annotations

import json

import pytest

from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration


def test_a_handler_sees_exactly_the_template_environment(probe_system: LocalSystem) -> None:
    # When the probe is invoked directly (as `tidings local invoke` does)
    result = probe_system.invoke("ProbeFunction", {"hello": "world"})

    # Then it ran, with Globals + its own variables, Refs resolved to the moto resources
    assert not result.failed, result.payload
    report = result.json()
    assert report["event"] == {"hello": "world"}
    env = report["env"]
    assert env["STAGE"] == "test"
    assert env["MODE"] == "testing"  # Fn::If on a condition
    assert env["OWN_SETTING"] == "probe-only"
    assert env["PROBE_TABLE"] == probe_system.physical_id("ProbeTable")
    assert env["PROBE_SECRET_ARN"] == probe_system.physical_id("ProbeSecret")
    assert env["AWS_ENDPOINT_URL"] == probe_system.moto_url
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == probe_system.physical_id("ProbeFunction")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    # and its module-level boto3 client reached moto through AWS_ENDPOINT_URL alone
    assert report["table_status"] == "ACTIVE"


def test_functions_do_not_share_an_environment(probe_system: LocalSystem) -> None:
    spec = probe_system.runtime.specs
    assert "OWN_SETTING" in spec["ProbeFunction"].environment
    assert "OWN_SETTING" not in spec["BatchFunction"].environment


def test_the_context_object_is_realistic(probe_system: LocalSystem) -> None:
    context = probe_system.invoke("ProbeFunction", {}).json()["context"]
    arn = probe_system.attr("ProbeFunction", "Arn")
    assert context["function_name"] == probe_system.physical_id("ProbeFunction")
    assert context["invoked_function_arn"] == arn
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 10_000
    assert len(context["aws_request_id"]) == 36


def test_a_warm_container_is_reused(probe_system: LocalSystem) -> None:
    first = probe_system.invoke("ProbeFunction", {}).json()["container_id"]
    second = probe_system.invoke("ProbeFunction", {}).json()["container_id"]
    assert first == second
    assert probe_system.runtime.pool("ProbeFunction").cold_starts == 1


def test_warming_starts_containers_up_to_the_limit_and_each_serves_at_once(probe_system: LocalSystem) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Given a function warmed with more containers than its limit
    pool = probe_system.runtime.pool("ProbeFunction")
    limit = pool.spec.max_concurrency
    pool.warm(containers=limit + 3)
    warmed = pool.cold_starts

    # When as many invocations as its limit arrive at once
    def container(_: int) -> str:
        return str(probe_system.invoke("ProbeFunction", {"sleep": 0.2}).json()["container_id"])

    with ThreadPoolExecutor(max_workers=limit) as executor:
        served_by = set(executor.map(container, range(limit)))

    # Then none of them waited for a cold start: the limit's worth were up already
    assert pool.cold_starts == warmed
    assert 1 <= len(served_by) <= limit


def test_an_exception_is_reported_with_its_class_name(probe_system: LocalSystem) -> None:
    result = probe_system.invoke("ProbeFunction", {"raise": "PaymentDeclined"})
    assert result.error_type == "PaymentDeclined"
    body = result.json()
    assert body["errorType"] == "PaymentDeclined"
    assert "probe asked to fail" in body["errorMessage"]
    assert any("app.py" in frame for frame in body["stackTrace"])


def test_boto3_invoke_through_moto_runs_the_handler(probe_system: LocalSystem) -> None:
    client = probe_system.boto3_client("lambda")
    name = probe_system.physical_id("ProbeFunction")

    ok = client.invoke(FunctionName=name, Payload=json.dumps({"via": "moto"}))
    assert "FunctionError" not in ok
    assert json.loads(ok["Payload"].read())["event"] == {"via": "moto"}

    failed = client.invoke(FunctionName=name, Payload=json.dumps({"raise": "RateLimited"}))
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "RateLimited"


def test_what_a_handler_prints_reaches_the_logs(probe_system: LocalSystem, logs) -> None:
    probe_system.invoke("ProbeFunction", {"print": "a line from the handler"})
    assert "a line from the handler" in logs.of("ProbeFunction")


def test_a_handler_that_outlives_its_timeout_is_stopped(probe_system: LocalSystem) -> None:
    # SlowProbeFunction has Timeout: 1 in the template
    result = probe_system.invoke("SlowProbeFunction", {"sleep": 30})
    assert result.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result.json()["errorMessage"]
    # and the next invocation gets a fresh container
    assert not probe_system.invoke("SlowProbeFunction", {}).failed


def test_an_asynchronous_invoke_is_accepted_then_runs(probe_system: LocalSystem, logs, wait_for) -> None:
    client = probe_system.boto3_client("lambda")
    accepted = client.invoke(
        FunctionName=probe_system.physical_id("ProbeFunction"),
        InvocationType="Event",
        Payload=json.dumps({"print": "ran asynchronously"}),
    )
    assert accepted["StatusCode"] == 202
    wait_for(lambda: "ran asynchronously" in logs.of("ProbeFunction"))


def test_an_alias_from_auto_publish_alias_invokes_the_same_code(probe_system: LocalSystem) -> None:
    client = probe_system.boto3_client("lambda")
    response = client.invoke(
        FunctionName=probe_system.physical_id("SlowProbeFunction"),
        Qualifier="live",
        Payload=b'{"via": "alias"}',
    )
    assert json.loads(response["Payload"].read())["event"] == {"via": "alias"}


def test_ses_identities_declared_in_the_template_are_verified(probe_system: LocalSystem) -> None:
    identities = probe_system.boto3_client("ses").list_identities()["Identities"]
    assert "probe@example.com" in identities


def test_resource_types_without_a_local_handler_are_skipped(probe_system: LocalSystem) -> None:
    assert probe_system.stack.resources["NightlyRule"].skipped
    assert not probe_system.stack.resources["ProbeTable"].skipped


def test_concurrent_invocations_run_in_separate_containers(probe_system: LocalSystem) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Each invocation holds its container for a moment, so three at once need three containers.
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: probe_system.invoke("ProbeFunction", {"sleep": 1}), range(3)))
    assert all(not r.failed for r in results)
    assert len({r.json()["container_id"] for r in results}) == 3


def test_init_failures_are_reported_with_the_runtime_error_types(probe_system: LocalSystem) -> None:
    crashed = probe_system.invoke("CrashingFunction", {})
    assert crashed.error_type == "Runtime.ExitError"
    assert "exit status 3" in crashed.json()["errorMessage"]

    missing_module = probe_system.invoke("MissingModuleFunction", {})
    assert missing_module.error_type == "Runtime.ImportModuleError"
    assert "Unable to import module 'no_such_module'" in missing_module.json()["errorMessage"]

    missing_handler = probe_system.invoke("MissingHandlerFunction", {})
    assert missing_handler.error_type == "Runtime.HandlerNotFound"


def test_each_invocation_is_framed_by_lambda_style_log_lines(
    probe_system: LocalSystem, logs, wait_for
) -> None:
    result = probe_system.invoke("ProbeFunction", {"print": "inside the frame"})
    request_id = result.request_id

    def framed() -> list[str] | None:
        lines = logs.of("ProbeFunction")
        return lines if f"END RequestId: {request_id}" in lines else None

    lines = wait_for(framed, timeout=10)
    start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
    inside = lines.index("inside the frame", start)
    end = lines.index(f"END RequestId: {request_id}", inside)
    assert lines[end + 1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "Memory Size: 256 MB" in lines[end + 1]


def test_a_test_can_change_a_function_environment(probe_system: LocalSystem) -> None:
    before = probe_system.invoke("ProbeFunction", {}).json()
    probe_system.set_function_env("ProbeFunction", {"OWN_SETTING": "changed-by-a-test"})
    after = probe_system.invoke("ProbeFunction", {}).json()
    assert after["env"]["OWN_SETTING"] == "changed-by-a-test"
    assert after["container_id"] != before["container_id"]  # a fresh container with the new environment
    probe_system.set_function_env("ProbeFunction", {"OWN_SETTING": "probe-only"})


def test_a_container_that_died_while_idle_is_replaced(probe_system: LocalSystem) -> None:
    import os
    import signal as signals

    first = probe_system.invoke("ProbeFunction", {}).json()
    pool = probe_system.runtime.pool("ProbeFunction")
    for worker in list(pool._idle):
        os.kill(worker.process.pid, signals.SIGKILL)
        worker.process.wait()
    after = probe_system.invoke("ProbeFunction", {})
    assert not after.failed
    assert after.json()["container_id"] != first["container_id"]
