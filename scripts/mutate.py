"""Mutation testing of the modules that carry nowcast's guarantees (``make mutate``).

Each module is mutated by cosmic-ray, one mutant at a time, in a scratch copy of
the source tree (so an interrupted run never leaves a mutant in the tree), and
only the test files that exercise that module are run against each mutant. The
tests start real processes, which import the mutated copy through PYTHONPATH.

The results (one cosmic-ray session database per module) are kept in
``mutants/``; a run that stops at its time budget resumes where it stopped the
next time, as long as the module has not changed; after new tests,
``--survivors`` runs the surviving mutants again.

    python scripts/mutate.py                       # every module, smallest first
    python scripts/mutate.py race sockets          # only these
    python scripts/mutate.py --budget 600 state    # at most 10 minutes on state.py
    python scripts/mutate.py --survivors race      # after new tests: the survivors again
    python scripts/mutate.py --report              # what the sessions hold so far
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "mutants"

# module -> the test files that exercise it, fast ones first (pytest stops at the
# first failure, so a mutant the unit tests kill costs little); smallest module first
MODULES: dict[str, list[str]] = {
    "race": ["tests/test_race.py", "tests/test_core.py"],
    "committer": ["tests/test_committer.py", "tests/test_state.py"],
    "sockets": ["tests/test_security.py", "tests/test_message_broker.py"],
    "state": [
        "tests/test_state.py",
        "tests/test_committer.py",
        "tests/test_core.py",
        "tests/test_supervision.py",
    ],
    "worker": ["tests/test_worker.py", "tests/test_compat.py", "tests/test_manager.py"],
    "checklist": ["tests/test_checklist.py", "tests/test_core.py"],
    "scheduler": ["tests/test_scheduler.py"],
    "supervision": ["tests/test_core.py", "tests/test_supervision.py"],
    "core": ["tests/test_core.py", "tests/test_manager.py", "tests/test_supervision.py"],
    "message_broker": ["tests/test_message_broker.py", "tests/test_security.py"],
    "manager": [
        "tests/test_manager.py",
        "tests/test_supervision.py",
        "tests/test_status.py",
        "tests/test_worker.py",
    ],
}

# Operators left out everywhere, with the reason:
EXCLUDED_OPERATORS = [
    # removing @property, @classmethod, @attrs.define... breaks every use of the
    # class at once: always killed, and each costs a whole test run
    "core/RemoveDecorator",
]

PER_MUTANT_TIMEOUT = 300  # seconds; a mutant that makes the tests hang counts as killed


def fingerprint(module: str) -> str:
    """A hash of the module: a session is reused only while the module is unchanged
    (after tests change, ``--survivors`` tests the survivors again)."""
    return hashlib.sha256((ROOT / f"nowcast/{module}.py").read_bytes()).hexdigest()[:12]


def forget_survivors(session: Path) -> int:
    """Mark the session's surviving mutants as not yet run; return how many."""
    import sqlite3

    with sqlite3.connect(session) as db:
        cursor = db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
        return cursor.rowcount


def scratch_copy() -> Path:
    """The tracked (and new, not ignored) files of the tree, copied to a temporary
    directory with no compiled files in it."""
    directory = Path(tempfile.mkdtemp(prefix="nowcast-mutate-"))
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = directory / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return directory


def config_text(module: str) -> str:
    tests = " ".join(MODULES[module])
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -o addopts= {tests}"
    excluded = ", ".join(f'"{name}"' for name in EXCLUDED_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f'module-path = "nowcast/{module}.py"\n'
        f"timeout = {PER_MUTANT_TIMEOUT}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run_module(module: str, budget: float, survivors: bool = False) -> None:
    RESULTS.mkdir(exist_ok=True)
    session = RESULTS / f"{module}-{fingerprint(module)}.sqlite"
    for stale in RESULTS.glob(f"{module}-*.sqlite"):
        if stale != session:
            stale.unlink()
    work = scratch_copy()
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        config = work / "cosmic-ray.toml"
        config.write_text(config_text(module))
        if not session.exists():
            baseline = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-o", "addopts=", *MODULES[module]],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
            )
            if baseline.returncode != 0:
                print(f"{module}: the tests fail without any mutant; not mutating")
                print(baseline.stdout[-2000:])
                return
            subprocess.run(
                [tool("cosmic-ray"), "init", str(config), str(session)],
                cwd=work,
                check=True,
                env=env,
            )
            for name in ("cr-filter-operators", "cr-filter-pragma"):
                arguments = (
                    [str(session), str(config)] if name == "cr-filter-operators" else [str(session)]
                )
                subprocess.run([tool(name), *arguments], cwd=work, check=True, env=env)
            print(
                f"{module}: {skip_annotations(session, module, work)} mutants in annotations skipped"
            )
        elif survivors:
            print(f"{module}: testing {forget_survivors(session)} survivor(s) again")
        print(f"{module}: {skip_annotations(session, module, work)} mutants in annotations skipped")
        started = time.monotonic()
        process = subprocess.Popen(
            [tool("cosmic-ray"), "--verbosity", "WARNING", "exec", str(config), str(session)],
            cwd=work,
            env=env,
            start_new_session=True,
        )
        try:
            process.wait(budget)
        except subprocess.TimeoutExpired:
            print(f"{module}: stopped at the budget of {budget:.0f} s; run again to go on")
        finally:
            stop_tree(process)
        print(f"{module}: {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's type annotations are, as ((line, col), (end line, end col)).
    With ``from __future__ import annotations`` (every nowcast module has it) they
    are never evaluated, so a mutant inside one cannot change anything."""
    import ast

    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            annotations = [a.annotation for a in every if a.annotation is not None]
            if node.returns is not None:
                annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for a in annotations:
            spans.append(((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)))
    return spans


def skip_annotations(session: Path, module: str, work: Path) -> int:
    """Mark the session's mutants inside type annotations as skipped; return how many."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans = annotation_spans((work / f"nowcast/{module}.py").read_text())
    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.work_items:
            for mutation in item.mutations:
                start = tuple(mutation.start_pos)
                if any(low <= start < high for low, high in spans):
                    db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
                    skipped += 1
                    break
    return skipped


def stop_tree(process: subprocess.Popen) -> None:
    """Stop cosmic-ray and the test run it started (in a session of its own)."""
    if process.poll() is not None:
        return
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == process.pid:  # its parent
            children.append(int(entry))
    for pgid in [process.pid, *children]:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    process.wait()


def report(modules: list[str]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    for module in modules:
        sessions = sorted(RESULTS.glob(f"{module}-*.sqlite"))
        if not sessions:
            print(f"{module}: not run")
            continue
        with use_db(str(sessions[-1]), WorkDB.Mode.open) as db:
            total = db.num_work_items
            done = list(db.completed_work_items)
            skipped = [r for _, r in done if r.worker_outcome == WorkerOutcome.SKIPPED]
            tested = [(i, r) for i, r in done if r.worker_outcome != WorkerOutcome.SKIPPED]
            survivors = [(i, r) for i, r in tested if r.test_outcome == TestOutcome.SURVIVED]
            fresh = sessions[-1].name.split("-", 1)[1].removesuffix(".sqlite") == fingerprint(
                module
            )
            print(
                f"{module}: {total} mutants, {len(skipped)} skipped by filters, "
                f"{len(tested)} tested, {len(survivors)} survived, "
                f"{total - len(done)} not yet run"
                + ("" if fresh else " (session older than the module or its tests)")
            )
            for item, result in survivors:
                [mutation] = item.mutations
                line = mutation.start_pos[0]
                print(f"  survived: line {line}: {mutation.operator_name} #{mutation.occurrence}")
                for diff_line in (result.diff or "").splitlines():
                    if diff_line.startswith(("+", "-")) and not diff_line.startswith(
                        ("+++", "---")
                    ):
                        print(f"    {diff_line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules, of {', '.join(MODULES)}")
    parser.add_argument("--budget", type=float, default=3600, help="seconds per module")
    parser.add_argument("--report", action="store_true", help="only report what was run")
    parser.add_argument(
        "--survivors", action="store_true", help="test the surviving mutants again (tests changed)"
    )
    args = parser.parse_args()
    modules = args.modules or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    # TERM (from a time limit around the run) stops it cleanly: no scratch copy left
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if not args.report:
        for module in modules:
            run_module(module, args.budget, args.survivors)
    report(modules)


if __name__ == "__main__":
    main()
