"""The layer's requirements.txt (what `sam build` installs) is uv.lock's runtime part, as tested."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
LAYER_REQUIREMENTS = ROOT / "layers/tidings/requirements.txt"
# The same command as `make requirements`, without the file's own first comment line.
EXPORT = ["export", "--no-dev", "--no-emit-project", "--frozen", "--no-header"]


def _uv() -> str:
    found = shutil.which("uv", path=str(ROOT / ".tools/bin")) or shutil.which("uv")
    assert found, "uv not found in .tools/bin or on PATH: run `make setup`"
    return found


def _pins(text: str) -> dict[str, str]:
    """name -> pinned version, for each requirement line, checking that hashes follow it."""
    lines = text.splitlines()
    pins = {}
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line and not line[0].isspace() and not line.startswith("#"):
            assert line.endswith(" \\"), line
            assert following.startswith("    --hash=sha256:"), line
            name, _, rest = line.partition("==")
            pins[name] = rest.split()[0].rstrip(";")
    return pins


def test_layer_requirements_are_the_locked_runtime_dependencies():
    # Given the committed file and uv's export of the lock
    header, _, committed = LAYER_REQUIREMENTS.read_text().partition("\n")
    exported = subprocess.run(
        [_uv(), *EXPORT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"},
    ).stdout

    # Then they are the same, so sam build installs what the tests ran with
    assert header.startswith("# Generated from uv.lock by `make requirements`")
    assert committed == exported, "layers/tidings/requirements.txt is stale: run `make requirements`"


def test_layer_requirements_pin_every_package_with_hashes():
    pins = _pins(LAYER_REQUIREMENTS.read_text())

    assert all(pins.values())
    # The versions the issue found drifting, and boto3 next to the botocore that aws-xray-sdk pulls in
    assert {"pydantic", "pydantic-core", "boto3", "botocore", "aws-lambda-powertools"} <= pins.keys()


def test_every_function_has_an_empty_requirements_file():
    # sam build warns for a function folder without requirements.txt; an empty one is its contract
    # for "no dependencies of its own" (they all come from the layer).
    folders = sorted(path.parent for path in (ROOT / "functions").glob("*/app.py"))

    assert folders
    for folder in folders:
        lines = (folder / "requirements.txt").read_text().splitlines()
        assert all(not line.strip() or line.startswith("#") for line in lines), folder.name
