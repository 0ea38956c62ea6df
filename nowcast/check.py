"""Check a nowcast system before deploying it: ``nowcast check config.yaml``.

Loads the config as every process does and, without starting anything, checks:

- every key against the documented schema (``nowcast/schema.py``): unknown keys
  with a did-you-mean, wrong values with the error the processes give;
- the checks each process makes when it starts (``VALIDATORS``);
- the message registry against the next workers module: the module imports,
  every registered worker has an ``after_`` function and every ``after_``
  function a registered worker;
- every worker module an ``after_`` function or the scheduler can launch: it can
  be found as ``python -m`` would find it (from this directory), it is registered,
  and the message types it sends, where they are literal strings, are registered.
  ``NextWorker(...)`` calls and worker modules are read, never run;
- hosts named in ``NextWorker(host=...)`` are in ``run: enabled hosts``; key files
  exist and only their owner can read the secret ones; ports differ.

Prints one line per problem, ``ERROR`` or ``WARNING``, with the file and the key or
line; exits 1 when there is an error, 0 otherwise. ``--json`` prints a list of
problems. The manager runs the same checks (but the processes' own) at start
and at each reload, and logs what they find.

To check something more, add a function to ``CHECKS`` (it takes a ``Context`` and
yields ``Problem``s), or a process to ``VALIDATORS``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from nowcast import schema
from nowcast.config import Config, key_path
from nowcast.errors import ConfigError

ERROR, WARNING = "ERROR", "WARNING"

# Keys of a worker's registry entry that are settings, not message types.
SETTINGS = frozenset(schema.WORKER.keys)


@attrs.frozen
class Problem:
    """One thing wrong: where (a file, and a key or a line) and what."""

    level: str
    file: str
    text: str
    key: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.level} {where}: {self.text}"

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.define
class Context:
    """What the checks share: the config, and what they learn from the code."""

    config: Config
    next_workers: Any = None  # the imported next workers module, once imported
    launched: list = attrs.Factory(list)  # (module, host, file, line) the system can launch
    sources: dict = attrs.Factory(dict)  # module name -> (path, ast tree) or None

    @property
    def file(self) -> str:
        return str(self.config.file)

    def problem(self, level: str, keys: tuple | None, text: str) -> Problem:
        """A problem at a key of the config file."""
        if keys is None:
            return Problem(level, self.file, text)
        return Problem(level, self.file, f"key {key_path(keys)} {text}", key=key_path(keys)[1:-1])

    def registry(self) -> dict:
        section = self.config.get("message registry")
        workers = section.get("workers") if isinstance(section, dict) else None
        return workers if isinstance(workers, dict) else {}


# the processes' own checks, each a (name, "module:Class") whose validate() raises ConfigError


def _worker_validate(config: Config) -> None:
    from nowcast.config import require_logging, require_zmq

    require_logging(config)
    require_zmq(config)


VALIDATORS: list[tuple[str, Callable[[Config], bool], str]] = [
    ("message broker", lambda c: True, "nowcast.message_broker:MessageBroker"),
    ("manager", lambda c: True, "nowcast.manager:NowcastManager"),
    ("scheduler", lambda c: True, "nowcast.scheduler:Scheduler"),
    (
        "log aggregator",
        lambda c: isinstance(c.get("logging"), dict) and "aggregator" in c["logging"],
        "nowcast.log_aggregator:LogAggregator",
    ),
]


def _validators(context: Context) -> Iterator[Problem]:
    config = context.config
    texts = []
    for _name, applies, where in VALIDATORS:
        if not applies(config):
            continue
        module_name, class_name = where.split(":")
        process_class = getattr(importlib.import_module(module_name), class_name)
        args = argparse.Namespace(config_file=config.file, ignore_checklist=False)
        try:
            process_class(args).validate(config)
        except ConfigError as e:
            texts.append(str(e))
        except (KeyError, TypeError, AttributeError) as e:  # a section of the wrong shape
            texts.append(f"{config.file}: {type(e).__name__}: {e}")
    try:
        _worker_validate(config)
    except ConfigError as e:
        texts.append(str(e))
    for text in dict.fromkeys(texts):
        prefix = f"{config.file}: "
        text = text[len(prefix) :] if text.startswith(prefix) else text
        match = re.match(r"key ('[^']*')", text)
        yield Problem(ERROR, context.file, text, key=match[1][1:-1] if match else None)


# the checks


def check_schema(context: Context) -> Iterator[Problem]:
    data = context.config._dict
    for level, keys, text in schema.walk(data):
        yield context.problem(level, keys, text)


def check_registry(context: Context) -> Iterator[Problem]:
    """The next workers module imports; workers and after_ functions match."""
    section = context.config.get("message registry")
    name = section.get("next workers module") if isinstance(section, dict) else None
    if not isinstance(name, str) or not name:
        return  # the schema or the manager's own check says so
    keys = ("message registry", "next workers module")
    if context.next_workers is None:
        try:
            context.next_workers = import_next_workers(name)
        except Exception as e:
            yield context.problem(ERROR, keys, f"cannot import {name!r}: {type(e).__name__}: {e}")
            return
    module = context.next_workers
    afters = {
        n[len("after_") :]: getattr(module, n)
        for n in dir(module)
        if n.startswith("after_") and callable(getattr(module, n))
    }
    registry = context.registry()
    for worker in registry:
        if worker not in afters:
            guess = schema.similar(worker, afters)
            hint = f" (did you mean after_{guess}?)" if guess else ""
            yield context.problem(
                ERROR,
                ("message registry", "workers", worker),
                f"has no after_{worker} function in next workers module {name}{hint}; "
                f"its messages would be refused",
            )
    path = _display(getattr(module, "__file__", None) or name)
    for worker, function in afters.items():
        if worker not in registry:
            guess = schema.similar(worker, registry)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            code = getattr(function, "__code__", None)
            yield Problem(
                WARNING,
                path,
                f"after_{worker} has no worker {worker!r} under key 'message registry: "
                f"workers' in {context.file}{hint}; it is never called",
                line=code.co_firstlineno if code else None,
            )
    yield from _read_next_workers(context, module)


def _read_next_workers(context: Context, module: Any) -> Iterator[Problem]:
    """Find the NextWorker(...) calls and race groups in the module's source."""
    source_file = getattr(module, "__file__", None)
    if not source_file or not source_file.endswith(".py"):
        return
    try:
        with open(source_file, encoding="utf-8") as f:
            tree = ast.parse(f.read(), source_file)
    except (OSError, SyntaxError, ValueError):
        return  # it imported, so this is unlikely; nothing to read statically
    path = _display(source_file)
    registry = context.registry()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called(node) == "NextWorker":
            module_name = _argument(node, 0, "module")
            host = _argument(node, 2, "host")
            if isinstance(module_name, str):
                context.launched.append((module_name, host, path, node.lineno))
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            for item in node.value.elts:
                if isinstance(item, ast.Set):
                    for element in item.elts:
                        racer = _literal(element)
                        if isinstance(racer, str) and racer not in registry:
                            guess = schema.similar(racer, registry)
                            hint = f" (did you mean {guess!r}?)" if guess else ""
                            yield Problem(
                                ERROR,
                                path,
                                f"race group waits for {racer!r}, which is not a registered "
                                f"worker{hint}; the group would never complete",
                                line=element.lineno,
                            )


def check_workers(context: Context) -> Iterator[Problem]:
    """Every worker module the system can launch exists, is registered, and sends
    registered message types."""
    for index, item in enumerate(_scheduled(context.config)):
        context.launched.append((item, None, context.file, None, index))
    registry = context.registry()
    hosts = _enabled_hosts(context.config)
    seen = set()
    for module_name, host, path, line, *index in context.launched:
        remote = isinstance(host, str) and host not in ("localhost", "")

        def at(
            level: str, text: str, path=path, line=line, index=index, module_name=module_name
        ) -> Problem:
            if index:
                return context.problem(level, ("scheduled workers", index[0], module_name), text)
            return Problem(level, path, text, line=line)

        if remote and host not in hosts:
            guess = schema.similar(host, hosts)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            yield at(
                ERROR,
                f"NextWorker host {host!r} is not under key 'run: enabled hosts' in "
                f"{context.file}{hint}",
            )
        if (module_name, remote) in seen:
            continue
        seen.add((module_name, remote))
        found, why = _find_module(module_name)
        if found is None:
            if remote:
                yield at(
                    WARNING,
                    f"worker module {module_name!r} is not found here ({why}); "
                    f"it must be installed on host {host!r}",
                )
            else:
                yield at(
                    ERROR,
                    f"worker module {module_name!r} cannot be found: "
                    f"'python -m {module_name}' would fail ({why})",
                )
            continue
        source = _parse(context, module_name, found)
        if isinstance(source, Problem):
            yield source
            continue
        name, types = _worker_facts(source)
        worker = name or module_name.rsplit(".", 1)[-1]
        if worker not in registry:
            guess = schema.similar(worker, registry)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            yield at(
                ERROR,
                f"worker {worker!r} (module {module_name}) is not under key 'message "
                f"registry: workers' in {context.file}{hint}",
            )
            continue
        entry = registry[worker]
        if not isinstance(entry, dict):
            continue
        registered = [t for t in entry if t not in SETTINGS]
        for msg_type, type_line in types:
            if msg_type not in registered:
                guess = schema.similar(msg_type, registered)
                hint = f" (did you mean {guess!r}?)" if guess else ""
                yield Problem(
                    ERROR,
                    _display(found),
                    f"worker {worker} sends message type {msg_type!r}, which is not "
                    f"registered under key 'message registry: workers: {worker}' in "
                    f"{context.file}{hint}",
                    line=type_line,
                )
        if name is not None and "crash" not in registered:
            yield context.problem(
                WARNING,
                ("message registry", "workers", worker),
                "has no 'crash' message type; a crash of this worker cannot be reported",
            )


def check_keys(context: Context) -> Iterator[Problem]:
    """Key files exist, and secret ones are readable by their owner only."""
    zmq_config = context.config.get("zmq")
    directory = zmq_config.get("curve keys") if isinstance(zmq_config, dict) else None
    if not isinstance(directory, str):
        return
    directory = os.path.expanduser(directory)
    keys = ("zmq", "curve keys")
    if not os.path.isdir(directory):
        yield context.problem(
            ERROR,
            keys,
            f"is {directory!r}, which is not a directory; make keys with: nowcast keys {directory}",
        )
        return
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".key_secret"):
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            yield context.problem(ERROR, keys, f"holds {path}, which cannot be read: {e.strerror}")
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            yield context.problem(
                ERROR,
                keys,
                f"holds the secret key {path}, which others can read "
                f"(mode {stat.S_IMODE(mode):o}); fix with: chmod 600 {path}",
            )


def check_ports(context: Context) -> Iterator[Problem]:
    """The broker's and the aggregator's ports all differ."""
    zmq_config = context.config.get("zmq")
    ports = zmq_config.get("ports") if isinstance(zmq_config, dict) else None
    if not isinstance(ports, dict):
        return
    used: dict[int, str] = {}
    for name, value in _port_values(ports, ("zmq", "ports")):
        if value in used and not (
            {used[value], name} == {"'zmq: ports: manager'", "'zmq: ports: workers'"}
        ):
            yield Problem(
                ERROR,
                context.file,
                f"keys {used[value]} and {name} must differ, both are {value}",
                key=name[1:-1],
            )
        used.setdefault(value, name)


CHECKS: list[Callable[[Context], Iterator[Problem]]] = [
    check_schema,
    check_registry,
    check_workers,
    check_keys,
    check_ports,
]


def problems(config: Config, next_workers: Any = None, processes: bool = True) -> list[Problem]:
    """Every problem found in the loaded ``config``. ``next_workers``: the module,
    when the caller has imported it already. ``processes``: run the processes'
    own start-up checks too (the manager, which has run its own, says no)."""
    context = Context(config, next_workers)
    found: list[Problem] = []
    for check in CHECKS:
        found.extend(check(context))
    if processes:
        errors_at = {p.key for p in found if p.level == ERROR and p.key}
        for problem in _validators(context):
            if problem.key is None or problem.key not in errors_at:
                found.append(problem)
    return list(dict.fromkeys(found))


def check_file(path: str) -> list[Problem]:
    """Load the config file at ``path`` as the processes do, then check it."""
    config = Config()
    try:
        config.load(path)
    except OSError as e:
        return [Problem(ERROR, str(path), f"cannot read the config file: {e.strerror}")]
    except KeyError as e:
        return [Problem(ERROR, str(path), str(e.args[0]))]
    except ConfigError as e:
        text = str(e)
        prefix = f"{path}: "
        return [Problem(ERROR, str(path), text[len(prefix) :] if text.startswith(prefix) else text)]
    return problems(config)


def log_problems(config: Config, logger: Any, next_workers: Any = None) -> None:
    """Log what ``problems`` finds (the processes' own checks aside), one line each:
    the manager calls this at start and at each reload. It never raises."""
    try:
        found = problems(config, next_workers, processes=False)
    except Exception:
        logger.exception("config check failed; carrying on")
        return
    for problem in found:
        if problem.level == ERROR:
            logger.error("config check: %s", problem)
        else:
            logger.warning("config check: %s", problem)


# helpers


def import_next_workers(name: str) -> Any:
    """Import the next workers module as the manager does: from its directory."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(name)


def _display(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _called(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: Any) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    return None


def _argument(node: ast.Call, position: int, keyword: str) -> Any:
    for kw in node.keywords:
        if kw.arg == keyword:
            return _literal(kw.value)
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args):
        return _literal(node.args[position])
    return None


def _scheduled(config: Config) -> list[str]:
    entries = config.get("scheduled workers")
    modules = []
    if isinstance(entries, list):
        for item in entries:
            if isinstance(item, dict) and len(item) == 1:
                modules.append(str(next(iter(item))))
    return modules


def _enabled_hosts(config: Config) -> dict:
    run = config.get("run")
    hosts = run.get("enabled hosts") if isinstance(run, dict) else None
    return hosts if isinstance(hosts, dict) else {}


def _find_module(name: str) -> tuple[str | None, str]:
    """``(file, "")``: the file ``python -m name`` would run (from this
    directory); ``(None, why)`` when there is none."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        return None, f"{type(e).__name__}: {e}"
    except Exception as e:  # a package's __init__ that raises
        return None, f"importing its package raised {type(e).__name__}: {e}"
    if spec is None:
        return None, f"no module named {name!r}"
    if spec.submodule_search_locations is not None:
        main = importlib.util.find_spec(f"{name}.__main__")
        if main is None:
            return None, f"{name!r} is a package without __main__"
        spec = main
    if not spec.origin:
        return None, f"{name!r} has no file"
    return spec.origin, ""


def _parse(context: Context, module_name: str, path: str) -> Any:
    if not path.endswith(".py"):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return ast.parse(f.read(), path)
    except SyntaxError as e:
        return Problem(
            ERROR,
            _display(path),
            f"worker module {module_name} is not valid Python: {e.msg}",
            line=e.lineno,
        )
    except (OSError, ValueError) as e:
        return Problem(ERROR, _display(path), f"worker module {module_name} cannot be read: {e}")


def _worker_facts(tree: Any) -> tuple[str | None, list[tuple[str, int]]]:
    """From a worker module's source: its NowcastWorker name, and the literal
    message types it sends (returned by its success and failure functions, or
    passed to tell_manager), with their lines."""
    if tree is None:
        return None, []
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(_literal(node.value), str):
                constants[target.id] = node.value.value
    name, handlers, types = None, set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = _called(node)
        if called == "NowcastWorker" and node.args:
            first = node.args[0]
            value = _literal(first)
            if isinstance(first, ast.Name):
                value = constants.get(first.id)
            if isinstance(value, str):
                name = value
        elif called == "run" and isinstance(node.func, ast.Attribute) and len(node.args) == 3:
            for handler in node.args[1:]:
                if isinstance(handler, ast.Name):
                    handlers.add(handler.id)
                elif isinstance(handler, ast.Lambda) and isinstance(_literal(handler.body), str):
                    types.append((handler.body.value, handler.lineno))
        elif called == "tell_manager" and node.args:
            value = _literal(node.args[0])
            if isinstance(value, str):
                types.append((value, node.lineno))
    if name is None:
        return None, []
    handlers = handlers or {"success", "failure"}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in handlers:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and isinstance(_literal(inner.value), str):
                    types.append((inner.value.value, inner.lineno))
    return name, types


def _port_values(ports: dict, where: tuple) -> Iterator[tuple[str, int]]:
    for name, value in ports.items():
        keys = (*where, name)
        if isinstance(value, dict):
            yield from _port_values(value, keys)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, int) and not isinstance(item, bool):
                    yield key_path((*keys, index)), item
        elif isinstance(value, int) and not isinstance(value, bool):
            yield key_path(keys), value


def main(argv: list[str] | None = None) -> None:
    from nowcast.cli import command_parser, print_out

    parser = command_parser("check", __doc__)
    parser.add_argument("config_file", help="Path of the nowcast system's YAML configuration file.")
    parser.add_argument("--json", action="store_true", help="Print the problems as JSON.")
    args = parser.parse_args(argv)
    found = check_file(args.config_file)
    errors = sum(p.level == ERROR for p in found)
    if args.json:
        print_out(json.dumps([p.to_dict() for p in found], indent=2))
    else:
        lines = [str(p) for p in found]
        warnings = len(found) - errors
        lines.append(
            f"{args.config_file}: {errors} error(s), {warnings} warning(s)"
            if found
            else f"{args.config_file}: no problems found"
        )
        print_out("\n".join(lines))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
