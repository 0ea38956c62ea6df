"""NEMO_Nowcast's public API, name for name: signatures and documented behaviour."""

from __future__ import annotations

import inspect
import logging
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

import nemo_nowcast
from nemo_nowcast import Config, NowcastWorker, WorkerError


def test_entry_points_take_no_arguments():
    from nemo_nowcast import log_aggregator, manager, message_broker, scheduler

    for module in (manager, message_broker, log_aggregator, scheduler):
        parameters = inspect.signature(module.main).parameters.values()
        assert all(p.default is not inspect.Parameter.empty for p in parameters), module


def test_nowcast_manager_needs_no_argument_and_takes_a_name(monkeypatch):
    from nemo_nowcast.manager import NowcastManager

    assert NowcastManager().name == "manager"
    assert NowcastManager(name="manager_2").name == "manager_2"
    assert NowcastManager("manager_3").name == "manager_3"  # NEMO_Nowcast's first argument
    monkeypatch.setattr(sys, "argv", ["manager", "nowcast.yaml", "--ignore-checklist"])
    args = NowcastManager.parse_args()
    assert (args.config_file, args.ignore_checklist) == ("nowcast.yaml", True)


def test_nowcast_worker_takes_nemo_nowcasts_arguments():
    config, logger = Config(), logging.getLogger("w")
    worker = NowcastWorker(
        "w", "does w", package="mysystem.workers", config=config, logger=logger, cli=None
    )
    assert (worker.name, worker.description, worker.package) == ("w", "does w", "mysystem.workers")
    assert worker.config is config and worker.logger is logger and worker.cli is None
    assert NowcastWorker("w", "does w").package == "nowcast.workers"
    names = list(inspect.signature(NowcastWorker).parameters)
    assert names == [
        "name",
        "description",
        "package",
        "config",
        "logger",
        "cli",
        "worker_func",
        "success",
        "failure",
    ]


def test_config_equality(tmp_path):
    path = tmp_path / "nowcast.yaml"
    path.write_text("checklist file: c.yaml\npython: python\n")
    one, two = Config(), Config()
    one.load(path)
    two.load(path)
    assert one == two
    two["python"] = "python3"
    assert one != two
    assert Config() == Config()


def write_config(tmp_path) -> str:
    config = {
        "checklist file": str(tmp_path / "checklist.yaml"),
        "python": sys.executable,
        "logging": {"version": 1, "handlers": []},
        "zmq": {"host": "127.0.0.1", "ports": {"manager": 1, "workers": 2}},
        "message registry": {
            "next workers module": "next_workers",
            "workers": {"w": {"success": "ok", "failure": "not ok", "crash": "crashed"}},
        },
    }
    path = tmp_path / "nowcast.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run_in_process(tmp_path, monkeypatch, worker_func) -> int:
    """Run a worker in this process, then put back the logging and the signal
    handlers it set up, for the tests that follow."""
    monkeypatch.setattr(sys, "argv", ["w", write_config(tmp_path), "--debug"])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = [h.level for h in handlers]
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker = NowcastWorker("w", "does w")
        worker.init_cli()
        return worker.run(worker_func, lambda args: "success", lambda args: "failure")
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        for handler, handler_level in zip(handlers, levels, strict=True):
            handler.setLevel(handler_level)
        root.setLevel(level)
        for signum, handler in signals.items():
            signal.signal(signum, handler)


def test_run_called_from_code_returns_instead_of_exiting(tmp_path, monkeypatch):
    assert run_in_process(tmp_path, monkeypatch, lambda *a: {"done": True}) == 0

    def fails(*args):
        raise WorkerError("no data")

    assert run_in_process(tmp_path, monkeypatch, fails) == 1


def test_system_exit_in_the_worker_function_ends_it_with_nothing_sent(
    tmp_path, monkeypatch, capsys
):
    sent = []
    monkeypatch.setattr(NowcastWorker, "tell_manager", lambda self, *a: sent.append(a))

    def exits(*args):
        sys.exit(0)

    assert run_in_process(tmp_path, monkeypatch, exits) == 0
    assert sent == []
    # --debug: the worker's records go to the console
    assert "worker function raised SystemExit(0); nothing reported" in capsys.readouterr().err


def test_run_as_a_program_keeps_the_exit_codes(tmp_path):
    (tmp_path / "w.py").write_text(
        textwrap.dedent(
            """
            from nemo_nowcast import NowcastWorker, WorkerError

            def fails(*args):
                raise WorkerError("no data")

            def main():
                worker = NowcastWorker("w", "does w", package="")
                worker.init_cli()
                worker.run(fails, lambda a: "success", lambda a: "failure")

            if __name__ == "__main__":
                main()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "w", write_config(tmp_path), "--debug"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr


def test_nemo_nowcast_public_names():
    for name in (
        "CommandLineInterface",
        "Config",
        "Message",
        "NextWorker",
        "NowcastWorker",
        "WorkerError",
        "get_web_data",
    ):
        assert getattr(nemo_nowcast, name) is getattr(sys.modules["nowcast"], name)
    from nemo_nowcast.fileutils import (  # noqa: F401
        AtomicSaver,
        FilePerms,
        atomic_save,
        copytree,
        iter_find_files,
        mkdir_p,
    )
    from nemo_nowcast.worker import NextWorker, NowcastWorker, WorkerError, get_web_data  # noqa: F401

    with pytest.raises(ImportError):
        from nemo_nowcast.fileutils import no_such_name  # noqa: F401
