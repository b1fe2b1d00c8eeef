"""The tree's structure rules, read from the code with `ast`: imports flow one way, contracts have one home.

- `lake` is a leaf: it imports no other project package; `model` and `lake` never import
  `functions`; nothing below `infra` and `devstack` imports them; the export engine and the
  settings module do not import each other; no two modules import each other, directly or
  around a circle.
- Outside `lake/contract.py` (and tests), no Python file spells a container or queue name as a
  string literal (docstrings may mention them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lake import contract

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("lake", "model", "functions", "infra", "devstack", "bench", "policy")
# Who may import whom: each package lists the project packages it may import.
ALLOWED = {
    "lake": set(),
    "model": {"lake"},
    "functions": {"lake", "model"},
    "infra": {"lake", "model", "functions"},
    "devstack": {"lake", "model", "functions"},
    "bench": {"lake", "model", "functions", "devstack", "infra"},
    "policy": {"infra"},
}


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in source_files()}


def resolve(name: str) -> str | None:
    """The project module an import names (`a.b.c` or its package), None for a third-party one."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(path: Path) -> set[str]:
    """Every project module `path` imports, at the top, inside functions, or for type checking.

    `from a.b import c` names the module `a.b.c` when that is a module, else `a.b` (where c lives).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {resolve(alias.name) for alias in node.names} - {None}  # type: ignore[arg-type]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}:{node.lineno}: relative import; the tree imports by absolute name")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                target = submodule if submodule in MODULES else resolve(node.module)
                if target is not None:
                    found.add(target)
    return found - {module_name(path)}


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def package_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        package = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and other not in ALLOWED[package]:
                problems.append(
                    f"{module} imports {target}: {package} may import only {sorted(ALLOWED[package])}"
                )
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan's algorithm), or a self-loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_packages_import_only_downwards() -> None:
    assert package_violations(GRAPH) == []


def test_the_export_engine_and_the_settings_do_not_import_each_other() -> None:
    # The engine and its parts; `job` is the app-level entry that hands the engine its settings.
    export = {m for m in GRAPH if m.startswith("functions.export")} - {"functions.export.job"}
    settings = {m for m in GRAPH if m.startswith("functions.settings")}
    assert [(m, t) for m in export for t in GRAPH[m] if t in settings] == []
    assert [(m, t) for m in settings for t in GRAPH[m] if t in export - {"functions.export.spec"}] == []


def test_no_module_imports_itself_around_a_circle() -> None:
    assert cycles(GRAPH) == []


def test_the_rules_fail_when_broken() -> None:
    broken = {"lake.paths": {"functions.settings"}, "functions.settings": {"lake.paths"}}
    assert package_violations(broken) == [
        "lake.paths imports functions.settings: lake may import only []",
    ]
    assert cycles(broken) == [["functions.settings", "lake.paths"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# -- the storage contract has one home ----------------------------------------------------------

NAMES = (
    *contract.LAKE_CONTAINERS,
    *contract.LAKE_QUEUES,
    contract.HOSTS_CONTAINER,
    contract.PACKAGE_CONTAINER,
)
CONTRACT = REPO / "lake" / "contract.py"
# Names no English text contains by chance: spelled anywhere (prose and messages too), they are wrong.
DISTINCT = tuple(name for name in NAMES if "-" in name)


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _not_a_name(node: ast.Constant, parent: ast.AST | None, grandparent: ast.AST | None) -> bool:
    """Contexts where a word like "rejected" or "models" is a field, a status or a folder, not storage."""
    if isinstance(parent, ast.Subscript) and parent.slice is node:  # manifest["rows"]["rejected"]
        return True
    if isinstance(parent, ast.Dict) and node in parent.keys:  # {"rejected": count}
        return True
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div):  # Path(work) / "models"
        return True
    is_enum_member = isinstance(parent, ast.Assign) and isinstance(grandparent, ast.ClassDef)
    return is_enum_member and any("Enum" in ast.unparse(base) for base in grandparent.bases)


def spelled_names(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals (not docstrings) that name a container or queue, or spell a path inside one."""
    parents: dict[int, ast.AST] = {
        id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
    }
    docstrings = _docstrings(tree)
    # a path into a container: "exports/%s", or the "exports/" before a value in f"exports/{x}"
    paths = re.compile(r"(^|[\s'\"(`])(" + "|".join(re.escape(n) for n in NAMES) + r")/(%|$)")
    hits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
            continue
        parent = parents.get(id(node))
        grandparent = parents.get(id(parent)) if parent is not None else None
        named = node.value in NAMES and not _not_a_name(node, parent, grandparent)
        if named or paths.search(node.value) or any(name in node.value for name in DISTINCT):
            hits.append((node.lineno, node.value))
    return hits


def test_no_module_outside_the_contract_spells_a_container_or_queue_name() -> None:
    found = {
        f"{path.relative_to(REPO)}:{line}": text
        for path in source_files()
        if path != CONTRACT
        for line, text in spelled_names(ast.parse(path.read_text()))
    }
    assert found == {}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('service.get_container_client("models")', [(1, "models")]),
        ('f"exports/{path}"', [(1, "exports/")]),
        ('QUEUE = "scoring-shards-poison"', [(1, "scoring-shards-poison")]),
        ('def f():\n    """Reads models/ and exports."""', []),
        ('log.info("scored %s", "predictions-report")', []),
        ('log.info("copied to scoring-input/%s", name)', [(1, "copied to scoring-input/%s")]),
        ('rows = manifest["rows"]["rejected"]', []),
        ('folder = Path(work) / "models"', []),
        ('class Status(StrEnum):\n    REJECTED = "rejected"', []),
        ('Outcome("rejected", name)', [(1, "rejected")]),
        (
            'parser.add_argument("blob", help="a blob name in scoring-input")',
            [(1, "a blob name in scoring-input")],
        ),
        ('rows = manifest["app-package"]', [(1, "app-package")]),
    ],
)
def test_the_contract_rule_catches_a_spelled_name(code: str, expected: list[tuple[int, str]]) -> None:
    assert spelled_names(ast.parse(code)) == expected


# -- the environment is read in one place -------------------------------------------------------


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read the process environment (`os.environ`, `os.getenv`, `environ.get`)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in {"environ", "getenv"}]
    return lines


def test_the_app_reads_its_environment_only_through_the_settings() -> None:
    """`functions/` reads settings through functions.settings (where the catalog checks them)."""
    settings = REPO / "functions" / "settings"
    found = {
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted((REPO / "functions").rglob("*.py"))
        if settings not in path.parents
        for line in environment_reads(ast.parse(path.read_text()))
    }
    assert found == set()
    assert environment_reads(ast.parse('import os\nx = os.environ.get("EXPORT_TABLES")')) == [2]
    assert environment_reads(ast.parse("from os import getenv")) == [1]
