"""The `tidings local` commands as a person runs them, in their own processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

pytestmark = pytest.mark.integration

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
TIDINGS = [sys.executable, "-m", "tidings_local.cli"]


def _run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIDINGS, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_invoke_prints_the_result_on_stdout_and_logs_on_stderr(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"print": "logged by the handler", "n": 1}))

    done = _run(
        "local", "invoke", "ProbeFunction", "-e", str(event), "-t", str(FIXTURE_TEMPLATE),
        "--parameter-overrides", "Stage=prod", "--no-sandboxes", cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["event"] == {"print": "logged by the handler", "n": 1}
    assert result["env"]["STAGE"] == "prod"
    assert result["env"]["MODE"] == "production"
    # stdout is the result alone (one JSON document); what the handler printed went to stderr
    assert done.stdout.count("\n") == 1
    assert "[ProbeFunction] logged by the handler" in done.stderr.splitlines()


def test_invoke_of_a_failing_function_exits_0_with_the_error_document(tmp_path: Path) -> None:
    done = _run(
        "local", "invoke", "ProbeFunction", "-e", "-", "-t", str(FIXTURE_TEMPLATE), "--no-sandboxes",
        cwd=tmp_path, stdin='{"raise": "InvalidRequest"}',
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout)
    assert error["errorType"] == "InvalidRequest"


def _serve(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], Path]:
    """Start ``tidings local <args>`` in its own process on ephemeral ports; return it once it has written
    where it listens (``.local-state/endpoints.json``), with that file's path."""
    process = subprocess.Popen(
        [*TIDINGS, "local", *args, "-t", str(FIXTURE_TEMPLATE),
         "-p", "0", "--moto-port", "0", "--issuer-port", "0"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    endpoints_file = cwd / ".local-state" / "endpoints.json"
    deadline = time.monotonic() + 90
    while not endpoints_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"local {args[0]} did not come up: {stderr}")
        time.sleep(0.2)
    return process, endpoints_file


def test_invoke_names_the_functions_when_the_id_is_wrong(tmp_path: Path) -> None:
    done = _run(
        "local", "invoke", "NoSuchFunction", "-t", str(FIXTURE_TEMPLATE), "--no-sandboxes", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "ProbeFunction" in done.stderr


def test_up_serves_until_stopped_and_token_gives_an_accepted_jwt(tmp_path: Path) -> None:
    # Given `tidings local up` on ephemeral ports, in its own process
    process, endpoints_file = _serve("up", "--no-sandboxes", cwd=tmp_path)
    try:
        endpoints = json.loads(endpoints_file.read_text())

        # When a token is asked for from another process
        token_run = _run("local", "token", "--sub", "cli-user", cwd=tmp_path)
        assert token_run.returncode == 0, token_run.stderr
        token = token_run.stdout.strip()

        # Then it names the running issuer and the template's audience, and the API accepts it
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == endpoints["issuer_url"]
        assert claims["aud"] == "probe-api"
        response = httpx.get(
            f"{endpoints['api_url']}/probe/cli", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert response.status_code == 200
        assert response.json()["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "cli-user"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    # and it printed where things listen, then stopped cleanly on Ctrl-C
    assert process.returncode == 0, stderr
    assert endpoints["api_url"] in stderr
    assert "tidings local token" in stderr
    assert not endpoints_file.exists()


def test_token_without_a_running_system_explains_what_to_do(tmp_path: Path) -> None:
    env_free = _run("local", "token", cwd=tmp_path)
    assert env_free.returncode == 1
    assert "tidings local up" in env_free.stderr
    assert os.listdir(tmp_path) == []


def test_start_api_serves_the_routes_with_their_authorizer(tmp_path: Path) -> None:
    process, endpoints_file = _serve("start-api", cwd=tmp_path)
    try:
        api_url = json.loads(endpoints_file.read_text())["api_url"]
        assert httpx.get(f"{api_url}/probe/1", timeout=30).status_code == 401
        assert httpx.post(f"{api_url}/open", timeout=30).status_code == 201
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "GET /probe/{probe_id}" in stderr
