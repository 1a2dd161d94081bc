"""The benchmark machinery runs end to end on tiny sizes and writes a well-formed report.

Nothing here judges a measured time: only that every number is there, positive, and consistent.
"""

import json
import re
import textwrap

import pytest

from tidings_local.bench import PROJECT_ROOT, coldstart, resilience, webhooks
from tidings_local.bench.__main__ import main

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
    # Given the tiniest sizes and one handler
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


def test_every_section_has_one_row_per_subject_with_ratios(report):
    summary, cold, latency, hooks = _tables(report)
    assert [row[0] for row in cold[1:]] == [coldstart.BARE, coldstart.BOTO3, "SendSmsFunction"]
    assert [row[0] for row in latency[1:]] == list(resilience.VARIANTS)
    assert [row[0] for row in hooks[1:]] == list(webhooks.PROVIDERS)
    # the ratio columns hold ratios, and each baseline is 1.00x against itself
    for row in cold[1:]:
        assert all(RATIO.match(cell) for cell in row[1:5])
    assert cold[1][1] == "1.00x"
    assert cold[2][2] == "1.00x"
    assert latency[1][1] == "1.00x"
    assert hooks[1][2] == "1.00x"
    assert all(
        RATIO.match(row[-1]) for row in summary[1:] if row[0].startswith(("cold", "Stripe", "webhook"))
    )
    failures = next(row for row in summary if row[0].startswith("handlers whose import failed"))
    assert failures[1:] == ["none", "0 of 1"]


def test_raw_numbers_are_positive_and_match_the_tables(report):
    raw = _raw(report)
    for row in raw["coldstart"]:
        assert row["process_ms"] > 0
        assert row["max_rss_mb"] > 0
        assert row["error"] is None
    handler = next(row for row in raw["coldstart"] if row["name"] == "SendSmsFunction")
    assert handler["import_ms"] > 0
    assert handler["network_attempts"] == 0
    assert all(row["requests"] == 3 and row["median_ms"] > 0 for row in raw["resilience"])
    assert all(row["verifications"] == 5 and row["ms_per_1000"] > 0 for row in raw["webhooks"])
    # the ratio printed for SendSmsFunction vs boto3 is computed from the raw numbers
    boto3 = next(row for row in raw["coldstart"] if row["name"] == coldstart.BOTO3)
    cold = _tables(report)[1]
    printed = next(row for row in cold if row[0] == "SendSmsFunction")[2]
    assert printed == f"{handler['process_ms'] / boto3['process_ms']:.2f}x"


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


def test_handler_targets_carry_the_template_environment():
    (target,) = coldstart.handler_targets(TEMPLATE, only=["SendSmsFunction"])
    env = target.environment
    assert target.module == "app"
    assert (PROJECT_ROOT / "functions" / "send_sms" / "app.py").samefile(f"{target.code_dir}/app.py")
    # Globals and the function's own variables, intrinsics resolved to strings
    assert env["POWERTOOLS_SERVICE_NAME"] == "tidings"
    assert env["RATE_LIMIT_TABLE"]
    assert float(env["TWILIO_RATE_PER_SECOND"]) > 0
    assert all(isinstance(value, str) for value in env.values())


def test_an_unknown_function_is_refused_by_name():
    with pytest.raises(ValueError, match="NoSuchFunction"):
        coldstart.handler_targets(TEMPLATE, only=["NoSuchFunction"])
