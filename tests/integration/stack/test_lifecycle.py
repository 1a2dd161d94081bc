"""One local system per process: moto's state is process-wide, so a new system replaces the old one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tidings_local.stack.system import LocalSystem
from tidings_local.stack.template import TemplateError

pytestmark = pytest.mark.integration

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


def test_a_second_system_stops_the_first_and_works(logs) -> None:
    first = LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, pollers=False, log_sink=logs)
    first_api = first.api_url
    with LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, pollers=False, log_sink=logs) as second:
        # The first one no longer serves (its API port is closed) ...
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{first_api}/open", timeout=5)
        # ... and the second one deploys and runs functions as usual.
        assert not second.invoke("ProbeFunction", {}).failed
        assert httpx.post(f"{second.api_url}/open", timeout=30).status_code == 201
    first.stop()  # stopping twice is harmless (e.g. a session fixture's teardown)


def test_a_failed_start_names_the_resource_and_leaves_nothing_running(tmp_path: Path) -> None:
    # A copy of the template without its statemachine/ folder: the definition file is missing
    broken = tmp_path / "template.yaml"
    broken.write_text(FIXTURE_TEMPLATE.read_text())
    with pytest.raises(TemplateError, match=r"could not create ProbeStateMachine .*probe\.asl\.json"):
        LocalSystem.start(broken, sandboxes=False)
    # and a new system can start right after
    with LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, pollers=False, serve_api=False) as system:
        assert system.physical_id("ProbeTable")


def test_moto_lambda_invoke_is_restored_after_stop() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke
    with LocalSystem.start(FIXTURE_TEMPLATE, sandboxes=False, pollers=False, serve_api=False):
        assert LambdaFunction.invoke is not original
    # other tests in the same process get moto's own Lambda behaviour back
    assert LambdaFunction.invoke is original


def test_changed_code_is_picked_up_by_new_containers(tmp_path: Path, logs, wait_for) -> None:
    import shutil

    # Given a copy of the fixture stack, served with code reloading on
    stack_dir = tmp_path / "stack"
    shutil.copytree(FIXTURE_TEMPLATE.parent, stack_dir)
    template = stack_dir / "template.yaml"
    with LocalSystem.start(
        template, sandboxes=False, pollers=False, reload_code=True, log_sink=logs
    ) as system:
        before = system.invoke("ProbeFunction", {}).json()["container_id"]

        # When the handler's module changes on disk
        app = stack_dir / "functions" / "probe" / "app.py"
        app.write_text(app.read_text() + '\nCONTAINER_ID = "after-the-edit"\n')

        # Then a later invocation runs the new code in a new container
        def reloaded() -> bool:
            return system.invoke("ProbeFunction", {}).json()["container_id"] == "after-the-edit"

        wait_for(reloaded, timeout=30, interval=0.5)
        assert before != "after-the-edit"


def test_eager_warm_containers_are_started_at_boot(logs) -> None:
    with LocalSystem.start(
        FIXTURE_TEMPLATE, sandboxes=False, pollers=False, serve_api=False, warm_containers=True, log_sink=logs
    ) as system:
        pool = system.runtime.pool("ProbeFunction")
        assert pool.cold_starts == 1
        result = system.invoke("ProbeFunction", {})
        assert not result.cold_start
        assert pool.cold_starts == 1
