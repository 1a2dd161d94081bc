"""The sandboxes import in one direction: server -> providers -> base, never back (no import cycle)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tidings_local

pytestmark = pytest.mark.unit

PACKAGE = Path(tidings_local.__file__).resolve().parent
SANDBOXES = "tidings_local.sandboxes"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(prefix: str) -> dict[str, Path]:
    found = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if name == prefix or name.startswith(prefix + ".")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports: at the top, inside functions or TYPE_CHECKING."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from package import module` depends on the module, `from module import name` on the module
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {name for name in found if name in modules and not _is_package_of(name, modules, found)}


def _is_package_of(name: str, modules: dict[str, Path], imported: set[str]) -> bool:
    # `from tidings_local.sandboxes import credentials` names the package only to reach a submodule.
    return modules[name].name == "__init__.py" and any(other.startswith(name + ".") for other in imported)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*trail[trail.index(target) :], target] if target in trail else [node, target]
            if target not in state and (found := visit(target, [*trail, target])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_sandbox_modules_have_no_import_cycle():
    modules = _modules(SANDBOXES)
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}

    assert _cycle(graph) is None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", sorted(set(_modules(SANDBOXES)) - {f"{SANDBOXES}.__main__"}))
def test_each_sandbox_module_imports_first_in_a_fresh_interpreter(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
