"""The benchmark machinery runs end to end on tiny sizes and writes a well-formed report.

Nothing here judges a measured time: only that every number is there, positive, and consistent.
"""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from tidings_local.bench import PROJECT_ROOT, coldstart, providers, resilience, webhooks
from tidings_local.bench.__main__ import main
from tidings_local.stack.template import load_template

pytestmark = pytest.mark.unit

TEMPLATE = PROJECT_ROOT / "template.yaml"
RATIO = re.compile(r"^\d+\.\d\dx$")


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every markdown table as rows of cells (header first, separator dropped)."""
    tables, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not all(set(cell) <= {"-"} for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _raw(markdown: str) -> dict:
    block = markdown.split("```json\n", 1)[1].split("\n```", 1)[0]
    return json.loads(block)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    # Given the tiniest sizes, one handler and one provider (this environment has Twilio's SDK)
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    # When the benchmark runs as `make bench` runs it
    code = main(
        [
            "--output",
            str(out),
            "--coldstart-runs",
            "1",
            "--requests",
            "3",
            "--warmup",
            "1",
            "--verifications",
            "5",
            "--verification-repeats",
            "1",
            "--function",
            "SendSmsFunction",
            "--provider",
            "twilio",
        ]
    )
    assert code == 0
    return out.read_text()


def test_report_has_the_reproduce_command_and_the_machine(report):
    assert "make bench" in report
    assert "python -m tidings_local.bench" in report
    raw = _raw(report)
    assert raw["machine"]["python"].startswith("3.13")
    assert raw["machine"]["cpus"] >= 1
    assert raw["sizes"]["requests"] == 3


def test_report_has_the_load_average_at_start_and_end(report):
    raw = _raw(report)
    assert len(raw["machine"]["load_average"]) == 3
    assert len(raw["load_average_end"]) == 3
    assert f"at the end {raw['load_average_end']}" in report


def test_every_section_has_one_row_per_subject_with_ratios(report):
    summary, cold, floors, marginals, clients, latency, hooks = _tables(report)
    assert [row[0] for row in cold[1:]] == ["SendSmsFunction"]
    assert cold[1][1] == "dynamodb + httpx"
    assert [row[0] for row in floors[1:]] == ["dynamodb + httpx"]
    assert "SendSms" in floors[1][-1]
    assert [row[0] for row in marginals[1:]] == ["twilio"]
    assert marginals[1][1] == "SendSmsFunction"
    assert [row[0] for row in clients[1:]] == ["twilio"]
    assert [row[0] for row in latency[1:]] == list(resilience.VARIANTS)
    assert [row[0] for row in hooks[1:]] == list(webhooks.PROVIDERS)
    # the ratio columns hold ratios, and each baseline is 1.00x against itself
    assert all(RATIO.match(cell) for cell in cold[1][2:5])
    assert RATIO.match(marginals[1][4])
    assert all(RATIO.match(cell) for cell in clients[1][3:6])
    assert latency[1][1] == "1.00x"
    assert hooks[1][2] == "1.00x"
    assert all(
        RATIO.match(row[-1])
        for row in summary[1:]
        if row[0].startswith(("cold", "issue 13", "Stripe", "webhook"))
    )
    (acceptance,) = [row for row in summary if row[0].startswith("issue 13")]
    assert "twilio" in acceptance[0]
    assert "SendSmsFunction's floor + `tidings.observability`" in acceptance[1]
    failures = next(row for row in summary if row[0].startswith("handlers whose import failed"))
    assert failures[1:] == ["none", "0 of 1"]


def test_raw_numbers_are_positive_and_match_the_tables(report):
    raw = _raw(report)
    for row in raw["coldstart"] + raw["providers"] + raw["provider_marginals"]:
        assert row["process_ms"] > 0
        assert row["max_rss_mb"] > 0
        assert row["error"] is None
        assert row["network_attempts"] == 0
    handler = next(row for row in raw["coldstart"] if row["name"] == "SendSmsFunction")
    assert handler["import_ms"] > 0
    assert all(row["requests"] == 3 and row["median_ms"] > 0 for row in raw["resilience"])
    assert all(row["verifications"] == 5 and row["ms_per_1000"] > 0 for row in raw["webhooks"])
    # the ratios printed for SendSmsFunction vs its floor and Tidings' Twilio client vs the SDK are
    # computed from the raw numbers
    floor = next(row for row in raw["coldstart"] if row["name"] == handler["floor"])
    printed = next(row for row in _tables(report)[1] if row[0] == "SendSmsFunction")[2]
    assert printed == f"{handler['import_ms'] / floor['import_ms']:.2f}x"
    ours, sending, sdk = raw["providers"]
    assert [row["name"] for row in raw["providers"]] == [
        "tidings: twilio",
        "tidings: twilio + HTTP path",
        "sdk: twilio",
    ]
    clients = _tables(report)[4][1]
    assert clients[3] == f"{ours['import_ms'] / sdk['import_ms']:.2f}x"
    assert clients[4] == f"{sending['import_ms'] / sdk['import_ms']:.2f}x"
    assert raw["sdk_versions"]["twilio"]
    assert raw["sdk_versions_with_layer"]["twilio"]


def test_the_in_handler_ratio_is_what_each_side_adds_to_the_same_base(report):
    raw = _raw(report)
    base, ours, sdk = raw["provider_marginals"]
    assert [row["name"] for row in raw["provider_marginals"]] == [
        "in handler: twilio base",
        "in handler: base + tidings twilio",
        "in handler: base + sdk twilio",
    ]
    # the base has nothing added; each side's addition is part of its whole import
    assert "marginal_ms" not in base
    for side in (ours, sdk):
        assert 0 < side["marginal_ms"] <= side["import_ms"]
    marginals = _tables(report)[3][1]
    assert marginals[4] == f"{ours['marginal_ms'] / sdk['marginal_ms']:.2f}x"
    assert marginals[5:7] == [f"{ours['marginal_ms']:.1f}", f"{sdk['marginal_ms']:.1f}"]
    assert marginals[7] == f"{base['import_ms']:.0f}"
    summary = _tables(report)[0]
    (acceptance,) = [row for row in summary if row[0].startswith("issue 13")]
    assert acceptance[2] == marginals[4]


def test_in_handler_targets_share_the_function_s_base_and_environment():
    # Given the in-handler targets for Twilio
    base, ours, sdk = providers.marginal_targets(TEMPLATE, ["twilio"])
    (function,) = coldstart.handler_targets(TEMPLATE, only=["SendSmsFunction"])
    # Then all three import SendSmsFunction's floor and the layer's observability first, with its
    # environment, and only the sides import something after it
    floor = coldstart.FLOORS["SendSmsFunction"].statement
    assert base.statement == ours.statement == sdk.statement == f"{floor}\nimport tidings.observability"
    assert base.environment == ours.environment == sdk.environment == function.environment
    assert base.marginal == ""
    assert ours.marginal.splitlines() == ["import tidings.providers.twilio", "import tidings.providers._http"]
    assert sdk.marginal == "from twilio.rest import Client"


def test_the_probe_times_the_marginal_import_on_its_own(tmp_path):
    # Given a target whose base imports one module and whose marginal imports another
    (tmp_path / "heavy.py").write_text("import json\n")
    (tmp_path / "extra.py").write_text("VALUE = 1\n")
    target = coldstart.Target("t", "heavy", str(tmp_path), marginal="import extra")
    # When it is probed
    (result,) = coldstart.measure([target], runs=1)
    # Then the marginal import has a time of its own, inside the whole import's
    assert result.error is None
    assert result.marginal_seconds is not None
    assert 0 < result.marginal_seconds <= result.import_seconds
    assert "marginal_ms" in result.as_dict()
    # and a target without one has none
    (plain,) = coldstart.measure([coldstart.Target("p", "heavy", str(tmp_path))], runs=1)
    assert plain.marginal_seconds is None
    assert "marginal_ms" not in plain.as_dict()


def test_handlers_are_probed_with_the_tracer_on_as_deployed():
    # Given the probe's environment for a function with Tracing: Active
    (target,) = coldstart.handler_targets(TEMPLATE, only=["SendSmsFunction"])
    _command, env = coldstart._probe_command(target)
    # When Powertools decides there whether its Tracer runs
    code = "from aws_lambda_powertools import Tracer; print(bool(Tracer._is_tracer_disabled()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Then it runs, as on Lambda
    assert out.stdout.strip() == "False"


def test_floors_carry_no_tracer(report):
    raw = _raw(report)
    handler = next(row for row in raw["coldstart"] if row["name"] == "SendSmsFunction")
    assert next(row for row in raw["coldstart"] if row["name"] == handler["floor"])["xray_loaded"] is False


def test_report_lists_the_top_import_costs_per_handler(report):
    (costs,) = _raw(report)["import_costs"]
    assert costs["name"] == "SendSmsFunction"
    assert 0 < len(costs["top"]) <= coldstart.TOP_IMPORTS
    assert all(item["cumulative_ms"] > 0 for item in costs["top"])
    assert "app" not in [item["module"] for item in costs["top"]]
    assert f"**SendSmsFunction** ({costs['total_ms']:.0f} ms): `{costs['top'][0]['module']}`" in report


def test_top_import_costs_keep_the_target_s_own_imports_and_collapse_chains():
    # Given -X importtime output: start-up, the probe's own modules, then the handler's import, in
    # which `b` is nearly all of `a` and `c` is a real part of it
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       900 |        900 | encodings",
            "import time:       100 |        100 | resource",
            "import time:       100 |      50000 |       c",
            "import time:       100 |      95000 |     b",
            "import time:       100 |     100000 |   a",
            "import time:       100 |      20000 |   d",
            "import time:       100 |     130000 | app",
        ]
    )
    # When the top costs are read
    costs = coldstart.top_import_costs(stderr, "app", top=3)
    # Then the start-up is not counted, `app` and `b` are left out, and the rest come by cost
    assert costs["total_ms"] == 130.0
    assert [(item["module"], item["cumulative_ms"]) for item in costs["top"]] == [
        ("a", 100.0),
        ("c", 50.0),
        ("d", 20.0),
    ]


def test_the_probe_counts_and_refuses_network_io_at_import(tmp_path):
    # Given a handler that opens a connection while being imported, and one that does not
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "app.py").write_text(
        textwrap.dedent(
            """
            import socket
            socket.create_connection(("127.0.0.1", 9), timeout=0.5)
            def lambda_handler(event, context):
                return event
            """
        )
    )
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "app.py").write_text("def lambda_handler(event, context):\n    return event\n")
    # When both are probed
    results = {
        r.name: r
        for r in coldstart.measure(
            [coldstart.Target("leaky", "app", str(leaky)), coldstart.Target("clean", "app", str(clean))],
            runs=1,
        )
    }
    # Then the leaky import is caught (refused, so it fails) and the clean one is not
    assert results["leaky"].network_attempts >= 1
    assert results["leaky"].error == "OSError"
    assert results["clean"].network_attempts == 0
    assert results["clean"].error is None


def test_handler_targets_carry_the_template_environment_as_deployed():
    (target,) = coldstart.handler_targets(TEMPLATE, only=["SendSmsFunction"])
    env = {**coldstart.FAKE_AWS_ENV, **target.environment}
    assert target.module == "app"
    assert (PROJECT_ROOT / "functions" / "send_sms" / "app.py").samefile(f"{target.code_dir}/app.py")
    # Globals and the function's own variables, intrinsics resolved to strings
    assert env["POWERTOOLS_SERVICE_NAME"] == "tidings"
    assert env["RATE_LIMIT_TABLE"]
    assert float(env["TWILIO_RATE_PER_SECOND"]) > 0
    assert all(isinstance(value, str) for value in env.values())
    # Tracing: Active, and nothing that turns the Powertools Tracer off
    assert env["AWS_XRAY_DAEMON_ADDRESS"]
    assert env["LAMBDA_TASK_ROOT"] == target.code_dir
    assert "AWS_SAM_LOCAL" not in env
    assert "POWERTOOLS_TRACE_DISABLED" not in env
    assert target.floor == "floor: dynamodb + httpx"


def test_every_function_in_the_template_has_a_floor():
    functions = set(load_template(TEMPLATE, stack_name="tidings-bench").functions())
    assert set(coldstart.FLOORS) == functions


def test_a_floor_imports_boto3_one_client_the_logger_and_httpx_only_when_asked():
    assert coldstart.Floor("sqs", httpx=False).statement.splitlines() == [
        "import boto3",
        "boto3.client('sqs')",
        "from aws_lambda_powertools import Logger",
    ]
    assert coldstart.Floor("dynamodb", httpx=True).statement.splitlines()[-1] == "import httpx"


def test_an_unknown_function_or_provider_is_refused_by_name():
    with pytest.raises(ValueError, match="NoSuchFunction"):
        coldstart.handler_targets(TEMPLATE, only=["NoSuchFunction"])
    with pytest.raises(ValueError, match="paypal"):
        providers.targets(TEMPLATE, ["paypal"])


def test_a_target_s_time_is_its_fastest_run_and_the_median_is_kept(monkeypatch):
    # Given a target whose runs take 0.3, 0.1 and 0.2 s (after the discarded first)
    seconds = iter([9.0, 0.3, 0.1, 0.2])

    def probe(target):
        value = next(seconds)
        return {
            "import_seconds": value,
            "process_seconds": value * 2,
            "max_rss_kb": 1024,
            "network_attempts": 0,
            "error": None,
        }

    monkeypatch.setattr(coldstart, "_probe_once", probe)
    # When it is measured
    (result,) = coldstart.measure([coldstart.Target("t", "app")], runs=3)
    # Then its time is the fastest run's, noise from other work only ever adding time
    assert (result.import_seconds, result.process_seconds) == (0.1, 0.2)
    assert (result.import_median_seconds, result.process_median_seconds) == (0.2, 0.4)
