"""NextWorker lives in a module of its own, below every layer that uses it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nowcast

PACKAGE = Path(nowcast.__file__).parent


def test_one_class_under_every_name():
    import nowcast.next_worker
    import nowcast.worker

    assert nowcast.worker.NextWorker is nowcast.next_worker.NextWorker
    assert nowcast.NextWorker is nowcast.next_worker.NextWorker


def test_next_worker_imports_nothing_of_nowcast():
    code = (
        "import sys, nowcast.next_worker; "
        "print(sorted(m for m in sys.modules if m.startswith('nowcast.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['nowcast.next_worker']"


# Imports that go up a layer on purpose: NextWorker.launch is NEMO_Nowcast's API and
# calls the launcher when a user calls it (never when the module is imported).
ALLOWED_UPWARD = {("nowcast.next_worker", "launch")}


def _imports(module: str, path: Path, lazy: bool = True) -> set[str]:
    """The nowcast modules ``path`` imports: at its top, and with ``lazy`` inside
    functions too; never under ``if TYPE_CHECKING`` or in ``ALLOWED_UPWARD``."""
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                not lazy or (module, child.name) in ALLOWED_UPWARD
            ):
                continue
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            else:
                walk(child)
                continue
            found.update(n for n in names if n in MODULES)

    walk(ast.parse(path.read_text()))
    found.discard(module)
    return found


FILES = {
    "nowcast." + p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."): p
    for p in PACKAGE.rglob("*.py")
    if p.name != "__init__.py"
}
MODULES = set(FILES)

# The layers a launch goes through, which every layer's NextWorker tied in a circle.
LAUNCH_LAYERS = {
    "nowcast.next_worker",
    "nowcast.worker",
    "nowcast.launcher",
    "nowcast.forkclient",
    "nowcast.forkserver",
    "nowcast.supervision",
}


def _circles(lazy: bool) -> set[str]:
    graph = {module: _imports(module, path, lazy) for module, path in FILES.items()}
    circles = set()

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph[module]):
            if imported in path:
                circles.add(" -> ".join([*path[path.index(imported) :], imported]))
            else:
                visit(imported, [*path, imported])

    for module in sorted(graph):
        visit(module, [module])
    return circles


def test_no_import_circles_at_import_time():
    circles = _circles(lazy=False)
    assert not circles, "import circles:\n" + "\n".join(sorted(circles)[:5])


def test_no_import_circle_through_the_launch_layers_even_lazily():
    """worker -> launcher -> forkserver -> supervision -> worker was one, through
    imports inside functions."""
    circles = {c for c in _circles(lazy=True) if LAUNCH_LAYERS & set(c.split(" -> "))}
    assert not circles, "import circles:\n" + "\n".join(sorted(circles)[:5])
