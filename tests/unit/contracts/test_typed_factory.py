"""What the provider factory builds is typed: no function in it answers Any (mypy checks the rest)."""

import ast
from pathlib import Path

import pytest

import tidings.providers.factory as factory

pytestmark = pytest.mark.unit


def test_no_function_of_the_provider_factory_is_annotated_to_return_any():
    tree = ast.parse(Path(factory.__file__).read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]

    untyped = [f.name for f in functions if f.returns is None and f.name != "__init__"]
    any_returns = [f.name for f in functions if f.returns is not None and "Any" in ast.unparse(f.returns)]

    assert len(functions) > 10
    assert untyped == []
    assert any_returns == []
