"""The module layout: packages in layers that import only downward, no import circles, one
definition of each results-schema name.

Read from the source with `ast` (nothing is imported), so it runs in the fast tier.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "data", "model", "tuning", "benchmarks")
LAYERS = ("common", "data", "model", "tuning.compat", "tuning.resume", "tuning.search", "tuning.results",
          "tuning.driver", "tuning", "benchmarks")
"""Lowest first: a module may import its own layer and the layers before it. `tuning` itself holds the
commands (grid, optuna, report) on top of its packages."""


def modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the project's packages and their subpackages."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
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


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports; a package's __init__, which importing any of its
    modules runs, is not an edge (it holds a docstring only: test_package_inits_are_one_line)."""
    mods = modules()
    return {m: {n for n in imports(p, set(mods)) - {m} if not m.startswith(n + ".")} for m, p in mods.items()}


def layer(module: str) -> int:
    """Index in LAYERS of the longest layer name that is `module` or a package above it."""
    return max((i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")),
               key=lambda i: len(LAYERS[i]))


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


def test_layer_is_the_innermost_package():
    # Rule: a module belongs to its innermost listed package; the commands to `tuning` itself.
    assert [layer(m) for m in ("tuning.search.space", "tuning.grid", "tuning.compat", "model.loop")] == [
        LAYERS.index("tuning.search"), LAYERS.index("tuning"), LAYERS.index("tuning.compat"), LAYERS.index("model")]


def test_no_import_circles():
    # Rule: no two project modules import each other, directly or around a loop (lazy imports count).
    assert cycle(graph()) is None


def test_packages_import_only_downward():
    # Rule: no module imports one of a later layer (lazy imports count), e.g. nothing in tuning.search
    # imports tuning.driver, and no package imports the commands.
    upward = sorted(f"{m} -> {n}" for m, deps in graph().items() for n in deps if layer(n) > layer(m))
    assert upward == []


def test_tuning_is_a_few_packages():
    # Rule: tuning/ holds its packages and the three commands, nothing else.
    top = {p.name for p in (ROOT / "tuning").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert top <= {"__init__.py", "grid.py", "optuna.py", "report.py", "compat.py",
                   "driver", "search", "resume", "results"}


def test_package_inits_are_one_line():
    # Rule: each package's __init__ is one docstring line that says what it holds (no code, no imports).
    for pkg in ("tuning/driver", "tuning/search", "tuning/resume", "tuning/results"):
        lines = (ROOT / pkg / "__init__.py").read_text().splitlines()
        assert len(lines) == 1 and lines[0].startswith('"""') and lines[0].endswith('"""'), pkg


def test_schema_names_are_defined_once():
    # Rule: the trial statuses and the column lists are assigned in tuning/results/tables.py only.
    names = {"METRIC_COLUMNS", "EPOCH_COLUMNS", "STATUSES", "FAILED", "INTERRUPTED", "TEXT_COLUMNS"}
    where = {}
    for m, p in modules().items():
        for node in ast.parse(p.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id in names:
                    where.setdefault(t.id, []).append(m)
    assert where == {n: ["tuning.results.tables"] for n in names}


def test_readme_documents_the_schema():
    # Rule: README's results table names exactly the epoch columns and statuses, and every fixed trial column.
    import re

    from tuning.results.tables import EPOCH_COLUMNS, METRIC_COLUMNS, STATUSES

    rows = {line.split("|")[1].strip(): line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    trials, epochs = rows["`trials.csv`, `trials.parquet`"], rows["`epochs.csv`"]
    named = re.findall(r"`([a-z_]+)`", trials.split("|")[2])
    assert tuple(re.findall(r"`([a-z_]+)`", epochs.split("|")[2])) == EPOCH_COLUMNS
    assert set(METRIC_COLUMNS) <= set(named)
    assert tuple(n for n in named if n in STATUSES) == STATUSES


DATA_SHAPE_NAMES = {"image_shape", "num_classes", "classes", "in_features", "images"}


def fixed_size(node: ast.expr | None) -> bool:
    """A default that is a number or a tuple of numbers: a data set's size written into the code."""
    try:
        v = ast.literal_eval(node) if node is not None else None
    except ValueError:
        return False
    return isinstance(v, int) or (isinstance(v, tuple) and bool(v) and all(isinstance(x, int) for x in v))


def test_no_data_shape_has_a_default():
    # Rule: the shape and classes of the data come from the data object: no function argument or
    # dataclass field of those names defaults to a size (MNIST's (28, 28) and 10 crept in that way);
    # None ("not given") is fine.
    assert fixed_size(ast.parse("(28, 28)", mode="eval").body) and not fixed_size(ast.parse("None", mode="eval").body)
    found = []
    for m, p in modules().items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                pos = a.posonlyargs + a.args
                named = list(zip(pos[len(pos) - len(a.defaults):], a.defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
                found += [f"{m}.{node.name}({arg.arg})" for arg, d in named
                          if arg.arg in DATA_SHAPE_NAMES and fixed_size(d)]
            elif isinstance(node, ast.ClassDef):
                found += [f"{m}.{node.name}.{s.target.id}" for s in node.body if isinstance(s, ast.AnnAssign)
                          and isinstance(s.target, ast.Name) and s.target.id in DATA_SHAPE_NAMES and fixed_size(s.value)]
    assert found == []


def test_tuning_tests_mirror_its_modules():
    # Rule: tests/tuning/<package>/test_<module>.py tests tuning/<package>/<module>.py, which exists
    # (the tests follow the packages; cross-cutting ones, faults or interrupts, stay in tests/).
    tests = sorted((ROOT / "tests" / "tuning").rglob("test_*.py"))
    assert len(tests) >= 20
    missing = [str(t.relative_to(ROOT)) for t in tests
               if not (ROOT / t.relative_to(ROOT / "tests").with_name(t.name[len("test_"):])).is_file()]
    assert missing == []
