"""The ``nowcast`` command: one entry point for every nowcast program.

``nowcast COMMAND [arguments]`` runs what ``python -m nowcast.<module>`` runs
(those forms keep working as they are); ``nowcast COMMAND --help`` describes one
command; ``nowcast --version`` prints the version. An unknown command exits 2
with the list.

To add a command, add a line to ``COMMANDS``: its name, ``"module:function"`` (a
function that takes the list of arguments, or reads ``sys.argv[1:]`` when given
none) and one line of help. The module is imported only when its command runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# name: ("module:function", one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "manager": ("nowcast.manager:run", "run the manager (config.yaml [--ignore-checklist])"),
    "broker": ("nowcast.message_broker:run", "run the message broker (config.yaml)"),
    "scheduler": ("nowcast.scheduler:main", "run the scheduler, or --list when workers run next"),
    "log-aggregator": ("nowcast.log_aggregator:run", "run the log aggregator (config.yaml)"),
    "status": ("nowcast.status:main", "what the running manager is doing (config.yaml [--json])"),
    "web": ("nowcast.web.server:main", "serve the web dashboard (config.yaml; needs nowcast[web])"),
    "check": ("nowcast.check:main", "check a config and its code before deploying (config.yaml)"),
    "history": (
        "nowcast.history:main",
        "runs, durations and trends from the history (config.yaml [WORKER] [--days N] [--json])",
    ),
    "keys": ("nowcast.keys:main", "make CurveZMQ keys (DIR [--client NAME])"),
    "ps": (
        "nowcast.processes:main_ps",
        "what of the system is running, workers included (config.yaml [--json])",
    ),
    "stop": (
        "nowcast.processes:main_stop",
        "stop the whole system, workers included (config.yaml [--grace S])",
    ),
    "run": (
        "nowcast.command:run_worker",
        "run a worker as python -m does (WORKER config.yaml ...)",
    ),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: nowcast COMMAND [arguments]   (nowcast COMMAND --help for one command)",
        "       nowcast --version",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "Each command can also be run as python -m nowcast.<module>, e.g.",
        "python -m nowcast.manager config.yaml.",
    ]
    return "\n".join(lines)


def run_worker(argv: list[str]) -> None:
    """``nowcast run WORKER config.yaml [args]``: run the worker module ``WORKER``
    as ``python -m WORKER config.yaml [args]`` would, from this directory."""
    import os
    import runpy

    from nowcast import cli

    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: nowcast run WORKER config.yaml [worker arguments]\n\n"
            "Run the worker module WORKER (e.g. nowcast.workers.sleep) as\n"
            "python -m WORKER config.yaml [worker arguments] would, from this directory.\n"
            "nowcast run WORKER --help shows the worker's own arguments."
        )
        sys.exit(0 if argv else 2)
    module, *rest = argv
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    cli.command_name = None  # the worker's help names it as python -m does
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        print(f"nowcast run: no worker module {module!r} (from {os.getcwd()})", file=sys.stderr)
        sys.exit(2)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> None:
    from nowcast import cli

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        cli.print_out(usage())
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from nowcast import __version__

        cli.print_out(f"nowcast {__version__}")
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"nowcast: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    target, _ = COMMANDS[name]
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    cli.command_name = f"nowcast {name}"
    sys.argv = [f"nowcast {name}", *rest]
    try:
        function(rest)
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
