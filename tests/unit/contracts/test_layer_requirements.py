"""The layer's requirements.txt (what `sam build` installs) must match the project's runtime deps."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]
PROVIDED_BY_LAMBDA_RUNTIME = {"boto3"}


def _names(lines):
    return {Requirement(line).name.lower(): str(Requirement(line).specifier) for line in lines}


def test_layer_requirements_match_pyproject_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _names(project["project"]["dependencies"])
    layer_lines = [
        line.strip()
        for line in (ROOT / "layers/tidings/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    in_layer = _names(layer_lines)
    expected = {name: spec for name, spec in declared.items() if name not in PROVIDED_BY_LAMBDA_RUNTIME}
    assert in_layer == expected
