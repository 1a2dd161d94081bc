"""moto and the provider sandboxes in processes of their own: the same system, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tidings_local.stack.system import LocalSystem

pytestmark = pytest.mark.integration

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a child that ended but was not reaped yet is gone all the same
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_state_machine_runs_handlers_through_the_relay_and_stop_ends_both_processes(logs, wait_for):
    # Given a system whose moto and sandboxes run in processes of their own
    with LocalSystem.start(FIXTURE_TEMPLATE, own_processes=True, pollers=False, log_sink=logs) as system:
        moto_pid = system.moto.pid
        sandbox_pids = {sandbox._group.pid for sandbox in system.sandboxes.values()}
        assert moto_pid != os.getpid()
        assert len(sandbox_pids) == 1
        assert os.getpid() not in sandbox_pids

        # When the state machine (in moto's process) runs a task whose handler fails once, typed
        sfn = system.boto3_client("stepfunctions")
        payload = {"attempt_key": f"relay-{uuid.uuid4()}", "fail_times": 1}
        arn = sfn.start_execution(
            stateMachineArn=system.physical_id("ProbeStateMachine"),
            name=f"probe-{uuid.uuid4().hex[:12]}",
            input=json.dumps(payload),
        )["executionArn"]
        execution = wait_for(
            lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, timeout=120
        )

        # Then the handler ran in this process's pool, its error type reached the Retry, and the retry passed
        assert execution["status"] == "SUCCEEDED"
        history = sfn.get_execution_history(executionArn=arn)["events"]
        assert [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"] == [
            "RateLimited"
        ]
        # and the sandboxes answer their control API as before
        stripe = system.sandboxes["stripe"].control
        assert stripe.set_rate_limit(5, 1) == {"per_second": 5, "burst": 1}
        assert stripe.request_counts() == {}

    # And stopping the system ends both processes
    assert not _alive(moto_pid)
    assert not any(_alive(pid) for pid in sandbox_pids)


def test_the_moto_process_ends_when_its_parent_dies_without_stopping_it(wait_for):
    # Given a process that starts moto in a process of its own and is then killed (no stop, no cleanup)
    script = (
        "import sys\n"
        "from tidings_local.stack.moto_server import MotoServer\n"
        "server = MotoServer(own_process=True).start()\n"
        "print(server.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    moto_pid = int(parent.stdout.readline())
    assert _alive(moto_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    # Then the moto process notices its stdin closed and ends
    wait_for(lambda: not _alive(moto_pid), timeout=30)
