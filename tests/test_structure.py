"""The module layout: no import circles, small modules, one definition of each results-schema name.

Read from the source with `ast` (nothing is imported), so it runs in the fast tier.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "data", "model", "tuning", "benchmarks")
MAX_LINES = 300


def modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the project's packages."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            name = pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Project modules that `path` imports anywhere (top level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_cycle_finds_a_circle():
    # Rule: the checker itself sees a circle of three and none in a chain.
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles():
    # Rule: no two project modules import each other, directly or around a loop (lazy imports count).
    mods = modules()
    graph = {m: imports(p, set(mods)) - {m} for m, p in mods.items()}
    for m in graph:  # importing a package's module also runs the package's __init__: not a circle
        graph[m] -= {m.split(".")[0]}
    assert cycle(graph) is None


def test_modules_are_small_or_say_why():
    # Rule: a module over 300 lines says why in a `# long:` line near its top.
    long = {m: len(p.read_text().splitlines()) for m, p in modules().items()
            if len(p.read_text().splitlines()) > MAX_LINES and "# long:" not in "".join(p.read_text().splitlines()[:15])}
    assert long == {}


def test_schema_names_are_defined_once():
    # Rule: the trial statuses and the column lists are assigned in tuning/tables.py only.
    names = {"METRIC_COLUMNS", "EPOCH_COLUMNS", "STATUSES", "FAILED", "INTERRUPTED", "TEXT_COLUMNS"}
    where = {}
    for m, p in modules().items():
        for node in ast.parse(p.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id in names:
                    where.setdefault(t.id, []).append(m)
    assert where == {n: ["tuning.tables"] for n in names}


def test_readme_documents_the_schema():
    # Rule: README's results table names exactly the epoch columns and statuses, and every fixed trial column.
    import re

    from tuning.tables import EPOCH_COLUMNS, METRIC_COLUMNS, STATUSES

    rows = {line.split("|")[1].strip(): line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    trials, epochs = rows["`trials.csv`, `trials.parquet`"], rows["`epochs.csv`"]
    named = re.findall(r"`([a-z_]+)`", trials.split("|")[2])
    assert tuple(re.findall(r"`([a-z_]+)`", epochs.split("|")[2])) == EPOCH_COLUMNS
    assert set(METRIC_COLUMNS) <= set(named)
    assert tuple(n for n in named if n in STATUSES) == STATUSES
