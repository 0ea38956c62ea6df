"""Mutation testing of the modules that carry nowcast's guarantees (``make mutate``).

Each module is mutated by cosmic-ray, one mutant at a time, in a scratch copy of
the source tree (so an interrupted run never leaves a mutant in the tree). The
tests start real processes, which import the mutated copy through PYTHONPATH.

What makes it affordable (docs/testing.md, "Mutation testing"):

- A baseline run of the module's test files under coverage, in every process
  the tests start too, records which test runs which line. A mutant is tested
  only by the tests that run its statement; a mutant on a statement no test
  runs is not tested at all and is reported as "not covered", not as killed.
- Two stages per mutant: first the fast tests among those (under
  ``FAST_TEST`` seconds in the baseline: in-process ones), stopping at the first
  failure; the slow real-process tests only if the mutant survived stage one.
- A reduced set of operators (``operator_kept``) and no mutants in lines that
  only log (``log_call_spans``) or in type annotations.
- Each stage has a time limit derived from the baseline durations of the tests
  it runs; a mutant that goes past it counts as "timed out", apart from killed.

The results (one cosmic-ray session database and one test plan per module) are
kept in ``mutants/``; a run that stops at its time budget resumes where it
stopped the next time, as long as the module has not changed; after new tests,
``--survivors`` measures the tests again and runs the surviving mutants again.

    python scripts/mutate.py                       # every module, smallest first
    python scripts/mutate.py race sockets          # only these
    python scripts/mutate.py --budget 600 state    # at most 10 minutes on state.py
    python scripts/mutate.py --survivors race      # after new tests: the survivors again
    python scripts/mutate.py --report              # what the sessions hold so far
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
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
PLAN = ".mutate"  # in the scratch copy: the test plan, the pristine module, coverage data

# module -> the test files that exercise it (the baseline run picks, for each
# line, the tests among these that run it); smallest module first
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
    "worker": [
        "tests/test_worker.py",
        "tests/test_nemo_api.py",
        "tests/test_compat.py",
        "tests/test_message_broker.py",
        "tests/test_security.py",
        "tests/test_manager.py",
    ],
    "checklist": ["tests/test_checklist.py", "tests/test_core.py", "tests/test_committer.py"],
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

FAST_TEST = 1.0  # seconds in the baseline (under coverage): faster tests run in stage one
TIME_FACTOR = 3  # a stage's limit: this many times its tests' baseline time, plus...
TIME_SLACK = 20  # ...this many seconds (pytest's start, a loaded machine)
TIMED_OUT = "NOWCAST-MUTATE: timed out"  # in a mutant's output: timed out, not killed

# The operators kept (docs/testing.md says why): within each group of binary
# operators; comparisons within order/equality, and `is` with `is not`; removing
# `not` or a unary minus. Every other operator of cosmic-ray is kept except
# RemoveDecorator (taking @property or @attrs.define off breaks every use of the
# class at once: always killed, at the cost of a whole test run).
BINARY_GROUPS = [{"Add", "Sub"}, {"Mul", "Div", "FloorDiv", "Mod"}, {"BitOr", "BitAnd", "BitXor"}]
COMPARISON_GROUPS = [{"Eq", "NotEq", "Lt", "LtE", "Gt", "GtE"}, {"Is", "IsNot"}]
UNARY_KEPT = {"Delete_Not", "USub_UAdd", "Delete_USub"}
OPERATORS_LEFT_OUT = {"RemoveDecorator"}

LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def operator_kept(name: str) -> bool:
    """Whether the cosmic-ray operator ``name`` (``core/ReplaceBinaryOperator_Add_Sub``)
    is among the reduced set."""
    name = name.removeprefix("core/")
    for prefix, groups in (
        ("ReplaceBinaryOperator_", BINARY_GROUPS),
        ("ReplaceComparisonOperator_", COMPARISON_GROUPS),
    ):
        if name.startswith(prefix):
            source, target = name.removeprefix(prefix).split("_")
            return any(source in group and target in group for group in groups)
    if name.startswith("ReplaceUnaryOperator_"):
        return name.removeprefix("ReplaceUnaryOperator_") in UNARY_KEPT
    return name not in OPERATORS_LEFT_OUT


def fingerprint(module: str) -> str:
    """A hash of the module: a session is reused only while the module is unchanged
    (after tests change, ``--survivors`` tests the survivors again)."""
    return hashlib.sha256((ROOT / f"nowcast/{module}.py").read_bytes()).hexdigest()[:12]


def forget_survivors(session: Path) -> int:
    """Mark the session's surviving (and timed-out) mutants as not yet run; return how many."""
    import sqlite3

    with sqlite3.connect(session) as db:
        cursor = db.execute(
            "DELETE FROM work_results WHERE test_outcome = 'SURVIVED'"
            " OR (test_outcome = 'KILLED' AND (output LIKE ? OR output = 'timeout'))",
            (f"%{TIMED_OUT}%",),
        )
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


def test_environment(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(work), str(work / "scripts")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- the baseline: which test runs which line, and how long each test takes ---


def statement_spans(source: str) -> dict[int, tuple[int, int]]:
    """For each line of the module, the lines of the statement it belongs to: a
    simple statement whole, a compound one (if, for, def, except...) its header only."""
    spans: list[tuple[int, int]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.stmt, ast.excepthandler)):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        body = getattr(node, "body", None)
        last = body[0].lineno - 1 if isinstance(body, list) and body else node.end_lineno
        spans.append((first, max(first, last)))
    lines: dict[int, tuple[int, int]] = {}
    for first, last in sorted(spans, key=lambda s: s[0] - s[1]):  # widest first
        for line in range(first, last + 1):
            lines[line] = (first, last)
    return lines


def measure(module: str, work: Path) -> dict:
    """Run the module's test files once under coverage, in every process they
    start too, each test named as the context; return the test plan: each
    test's duration, and for each line of the module the tests that run its
    statement."""
    plan_dir = work / PLAN
    plan_dir.mkdir(exist_ok=True)
    for stale in plan_dir.glob("coverage*"):
        stale.unlink()
    rc = plan_dir / "coveragerc"
    rc.write_text(
        "[run]\n"
        f"data_file = {plan_dir / 'coverage'}\n"
        "parallel = true\n"
        f"include = */nowcast/{module}.py\n"
        "context = ${NOWCAST_MUTATE_CONTEXT}\n"
        "sigterm = true\n"
        "patch = _exit, fork\n"
    )
    results_file = plan_dir / "baseline.json"
    env = {
        **test_environment(work),
        "COVERAGE_PROCESS_START": str(rc),
        "NOWCAST_MUTATE_DURATIONS": str(results_file),
    }
    env.pop("NOWCAST_MUTATE_CONTEXT", None)
    started = time.monotonic()
    baseline = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "-p", "mutate_contexts", *MODULES[module]],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        baseline.wait()
    finally:
        stop_tree(baseline)
    print(f"{module}: baseline under coverage: {time.monotonic() - started:.0f} s")
    results = json.loads(results_file.read_text())
    durations = {n: r["duration"] for n, r in results.items() if r["outcome"] == "passed"}
    failed = [n for n, r in results.items() if r["outcome"] == "failed"]
    for nodeid in failed:
        print(f"{module}: left out, failed in the baseline: {nodeid}")

    import coverage

    data = coverage.CoverageData(basename=str(plan_dir / "coverage"))
    coverage.Coverage(data_file=str(plan_dir / "coverage"), config_file=str(rc)).combine(keep=True)
    data.read()
    contexts: dict[int, set[str]] = {}
    for measured in data.measured_files():
        if not Path(measured).is_relative_to(work):
            print(f"{module}: a test imported {measured}, outside the scratch copy")
        for line, names in data.contexts_by_lineno(measured).items():
            contexts.setdefault(line, set()).update(names)
    tests = sorted(durations, key=lambda n: durations[n])
    everyone = set(tests)
    spans = statement_spans((work / f"nowcast/{module}.py").read_text())
    lines: dict[str, list[str]] = {}
    for line, (first, last) in spans.items():
        names: set[str] = set()
        for covered in range(first, last + 1):
            names |= contexts.get(covered, set())
        if "" in names:  # run outside any test (at collection, importing): all of them
            names = everyone
        chosen = [n for n in tests if n in names]
        if chosen:
            lines[str(line)] = chosen
    return {"durations": durations, "lines": lines, "failed": failed}


# --- one mutant's tests, in two stages (cosmic-ray's test command) ---


def changed_lines(pristine: str, mutated: str) -> set[int]:
    """The lines of the pristine module that the mutant changed."""
    matcher = difflib.SequenceMatcher(None, pristine.splitlines(), mutated.splitlines())
    changed = set()
    for tag, first, last, _, _ in matcher.get_opcodes():
        if tag != "equal":
            changed.update(range(first + 1, max(last, first + 1) + 1))
    return changed


def run_stage(tests: list[str], limit: float, work: Path) -> str:
    """Run ``tests`` (stopping at the first failure) within ``limit`` seconds:
    "passed", "failed" or "timed out"."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         *tests],
        cwd=work,
        env=test_environment(work),
        start_new_session=True,
    )  # fmt: skip
    try:
        return "passed" if process.wait(limit) == 0 else "failed"
    except subprocess.TimeoutExpired:
        # INT first: pytest tears its fixtures down, so the processes tests started stop
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            stop_tree(process)
        return "timed out"


def test_mutant(module: str, work: Path) -> int:
    """Test the mutant now in the scratch copy: 0 if it survived, 1 if killed,
    2 if it timed out (printed too: cosmic-ray keeps only the output)."""
    plan = json.loads((work / PLAN / "plan.json").read_text())
    pristine = (work / PLAN / f"{module}.py").read_text()
    mutated = (work / f"nowcast/{module}.py").read_text()
    chosen: set[str] = set()
    for line in changed_lines(pristine, mutated):
        chosen.update(plan["lines"].get(str(line), []))
    durations = plan["durations"]
    ordered = sorted(chosen, key=lambda n: durations[n])
    for stage, tests in (
        ("one", [n for n in ordered if durations[n] < FAST_TEST]),
        ("two", [n for n in ordered if durations[n] >= FAST_TEST]),
    ):
        if not tests:
            continue
        limit = TIME_FACTOR * sum(durations[n] for n in tests) + TIME_SLACK
        outcome = run_stage(tests, limit, work)
        print(f"NOWCAST-MUTATE: stage {stage}: {len(tests)} test(s), {limit:.0f} s: {outcome}")
        if outcome == "failed":
            return 1
        if outcome == "timed out":
            print(TIMED_OUT)
            return 2
    if not chosen:
        print("NOWCAST-MUTATE: no test runs these lines")
    return 0


# --- the session ---


def config_text(module: str, work: Path, timeout: float) -> str:
    command = f"{sys.executable} {work / 'scripts/mutate.py'} --test-mutant {module} --work {work}"
    return (
        "[cosmic-ray]\n"
        f'module-path = "nowcast/{module}.py"\n'
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run_module(module: str, budget: float, survivors: bool = False) -> None:
    RESULTS.mkdir(exist_ok=True)
    session = RESULTS / f"{module}-{fingerprint(module)}.sqlite"
    plan_file = session.with_suffix(".plan.json")
    for stale in RESULTS.glob(f"{module}-*"):
        if stale not in (session, plan_file):
            stale.unlink()
    work = scratch_copy()
    env = test_environment(work)
    try:
        (work / PLAN).mkdir()
        shutil.copy2(work / f"nowcast/{module}.py", work / PLAN / f"{module}.py")
        if not plan_file.exists() or survivors:
            plan = measure(module, work)
            plan_file.write_text(json.dumps(plan))
        plan = json.loads(plan_file.read_text())
        (work / PLAN / "plan.json").write_text(json.dumps(plan))
        if not plan["durations"]:
            print(f"{module}: every test failed without any mutant; not mutating")
            return
        # cosmic-ray's own limit, only a backstop: the stages have theirs
        backstop = TIME_FACTOR * sum(plan["durations"].values()) + 4 * TIME_SLACK + 60
        config = work / "cosmic-ray.toml"
        config.write_text(config_text(module, work, backstop))
        if not session.exists():
            subprocess.run(
                [tool("cosmic-ray"), "init", str(config), str(session)],
                cwd=work,
                check=True,
                env=env,
            )
            subprocess.run([tool("cr-filter-pragma"), str(session)], cwd=work, check=True, env=env)
            for reason, count in skip_mutants(session, module, work, plan).items():
                print(f"{module}: {count} mutants skipped: {reason}")
        elif survivors:
            print(f"{module}: testing {forget_survivors(session)} survivor(s) again")
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


def log_call_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the statements that only log are: an expression statement that is a
    call of ``debug``, ``info``, ``warning``, ``error``, ``exception``,
    ``critical`` or ``log`` on an object whose name contains "log" (``logger``,
    ``self.logger``, ``checklist_logger``). A mutant there changes only the text
    or the level of a log line."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
            continue
        function = node.value.func
        if not (isinstance(function, ast.Attribute) and function.attr in LOG_METHODS):
            continue
        receiver = function.value
        name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
        if "log" in name.lower():
            spans.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
    return spans


def skip_mutants(session: Path, module: str, work: Path, plan: dict) -> dict[str, int]:
    """Mark as skipped, each with its reason as output, the mutants of operators
    left out, in type annotations, in statements that only log, and on lines no
    test runs; return how many for each reason."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    source = (work / f"nowcast/{module}.py").read_text()
    places = {
        "in a type annotation": annotation_spans(source),
        "in a statement that only logs": log_call_spans(source),
    }
    counts: dict[str, int] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            [mutation] = item.mutations
            start = tuple(mutation.start_pos)
            reason = None
            if not operator_kept(mutation.operator_name):
                reason = "operator left out"
            for name, spans in places.items():
                if reason is None and any(low <= start < high for low, high in spans):
                    reason = name
            if reason is None and not any(
                str(line) in plan["lines"]
                for line in range(mutation.start_pos[0], mutation.end_pos[0] + 1)
            ):
                reason = "not covered"
            if reason is not None:
                db.set_result(
                    item.job_id, WorkResult(output=reason, worker_outcome=WorkerOutcome.SKIPPED)
                )
                counts[reason] = counts.get(reason, 0) + 1
    return counts


def stop_tree(process: subprocess.Popen) -> None:
    """Stop ``process`` and every process under it: the test runs, which are in
    sessions of their own, and the brokers, managers and workers their tests
    started. The whole tree is listed before anything is killed, so none of them
    is orphaned out of reach."""
    if process.poll() is not None:
        return
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))  # by parent
    tree, queue = [], [process.pid]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    process.wait()


def classify(result) -> str:
    """A finished mutant's outcome: one of the report's columns, or why it was skipped."""
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    output = result.output or ""
    if result.worker_outcome == WorkerOutcome.SKIPPED:
        return "not covered" if output == "not covered" else f"skipped: {output}"
    if result.test_outcome == TestOutcome.SURVIVED:
        return "survived"
    if result.test_outcome == TestOutcome.KILLED:
        return "timed out" if TIMED_OUT in output or output == "timeout" else "killed"
    return "incompetent"  # the mutant could not be made or run (a syntax error...)


def table(modules: list[str]) -> None:
    """The counts of each module's session as rows of docs/testing.md's table."""
    from cosmic_ray.work_db import WorkDB, use_db

    print("| module | mutants | skipped by filters | not covered | killed | survived "
          "| timed out | not run (budget) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for module in modules:
        sessions = sorted(RESULTS.glob(f"{module}-*.sqlite"))
        if not sessions:
            continue
        with use_db(str(sessions[-1]), WorkDB.Mode.open) as db:
            total = db.num_work_items
            outcomes = [classify(result) for _, result in db.completed_work_items]
        skipped = sum(1 for o in outcomes if o.startswith("skipped"))
        counts = [outcomes.count(o) for o in ("not covered", "killed", "survived", "timed out")]
        cells = [total, skipped, *counts, total - len(outcomes)]
        print(f"| `{module}.py` | " + " | ".join(str(c) for c in cells) + " |")


def report(modules: list[str]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db

    for module in modules:
        sessions = sorted(RESULTS.glob(f"{module}-*.sqlite"))
        if not sessions:
            print(f"{module}: not run")
            continue
        with use_db(str(sessions[-1]), WorkDB.Mode.open) as db:
            total = db.num_work_items
            done = list(db.completed_work_items)
        counts: dict[str, int] = {}
        for _, result in done:
            counts[classify(result)] = counts.get(classify(result), 0) + 1
        skipped = sum(n for name, n in counts.items() if name.startswith("skipped"))
        fresh = sessions[-1].stem.split("-", 1)[1] == fingerprint(module)
        print(
            f"{module}: {total} mutants, {skipped} skipped by filters, "
            f"{counts.get('not covered', 0)} not covered, "
            f"{counts.get('killed', 0)} killed, {counts.get('survived', 0)} survived, "
            f"{counts.get('timed out', 0)} timed out, {counts.get('incompetent', 0)} incompetent, "
            f"{total - len(done)} not yet run"
            + ("" if fresh else " (session older than the module)")
        )
        for name, n in sorted(counts.items()):
            if name.startswith("skipped"):
                print(f"  {name}: {n}")
        for item, result in done:
            if classify(result) not in ("survived", "timed out"):
                continue
            [mutation] = item.mutations
            line = mutation.start_pos[0]
            print(
                f"  {classify(result)}: line {line}: "
                f"{mutation.operator_name} #{mutation.occurrence}"
            )
            for diff_line in (result.diff or "").splitlines():
                if diff_line.startswith(("+", "-")) and not diff_line.startswith(("+++", "---")):
                    print(f"    {diff_line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules, of {', '.join(MODULES)}")
    parser.add_argument("--budget", type=float, default=3600, help="seconds per module")
    parser.add_argument("--report", action="store_true", help="only report what was run")
    parser.add_argument("--table", action="store_true", help="the counts as a Markdown table")
    parser.add_argument(
        "--survivors", action="store_true", help="test the surviving mutants again (tests changed)"
    )
    parser.add_argument("--test-mutant", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.test_mutant:
        sys.exit(test_mutant(args.test_mutant, args.work))
    modules = args.modules or list(MODULES)
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    os.nice(19 - os.nice(0))  # the lowest priority, whoever starts it
    # TERM (from a time limit around the run) stops it cleanly: no scratch copy left
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.table:
        table(modules)
        return
    if not args.report:
        for module in modules:
            run_module(module, args.budget, args.survivors)
    report(modules)


if __name__ == "__main__":
    main()
