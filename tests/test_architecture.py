"""The package layout is the data flow: stages import only earlier stages, and no module imports itself
back through others.

The stage order lives once, as data: the layers contract in pyproject.toml ([tool.importlinter]), which
import-linter checks here and scripts/architecture.py draws in docs/architecture.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def test_stages_import_only_earlier_stages() -> None:
    """import-linter's contracts in pyproject.toml: the layers, and shared modules importing no stage.

    In a subprocess: import-linter reconfigures logging in its process, which would blind later tests'
    log captures."""
    run = ("from importlinter.cli import lint_imports; "
           f"raise SystemExit(lint_imports(config_filenames=({str(ROOT / 'pyproject.toml')!r},), no_cache=True))")
    result = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    """Function-level and TYPE_CHECKING imports count too: a cycle hidden in a function is still one."""
    graph = grimp.build_graph("eventclip")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & graph.modules for m in graph.modules}
    assert _cycles(edges) == []


def test_architecture_picture_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "architecture.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
