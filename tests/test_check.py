"""``nowcast check``: the config and the system's code checked before a deploy."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import large_system
import pytest
import yaml
from conftest import PY, free_port, wait_for

from nowcast import check

ROOT = Path(__file__).resolve().parent.parent


def example_env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "NOWCAST_ENV": str(Path(sys.executable).parent.parent),
        "NOWCAST_LOGS": str(tmp_path / "logs"),
        "NOWCAST_DATA": str(tmp_path / "data"),
    }


def run_check(config: Path | str, cwd: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [PY, "-m", "nowcast", "check", str(config), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_the_example_system_has_no_problems(tmp_path):
    result = run_check("config/nowcast.yaml", ROOT, env=example_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "config/nowcast.yaml: no problems found"


@pytest.fixture
def large(tmp_path, monkeypatch):
    """The large real-world-shaped system, written in ``tmp_path`` (the current
    directory), its modules forgotten after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NOWCAST_LOGS", str(tmp_path))
    monkeypatch.setenv("NOWCAST_ENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setattr(sys, "path", list(sys.path))
    config = large_system.write(tmp_path, {"manager": free_port(), "workers": free_port()})
    yield config
    for name in [m for m in sys.modules if m == "mysys" or m.startswith("mysys.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def problems(config: Path) -> list[str]:
    importlib.invalidate_caches()
    return [str(p) for p in check.check_file(config.name)]


def test_the_large_system_has_no_problems(large, tmp_path):
    assert len(large_system.WORKERS) >= 30
    result = run_check(large.name, tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "nowcast.yaml: no problems found"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def edit_config(config: Path, change) -> None:
    data = yaml.safe_load(config.read_text())
    change(data)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def registry(data: dict) -> dict:
    return data["message registry"]["workers"]


def test_a_misspelt_setting_is_an_error_with_a_guess(large):
    edit_config(large, lambda d: registry(d)["run_NEMO"].update({"timout": 60}))
    assert problems(large) == [
        "ERROR nowcast.yaml: key 'message registry: workers: run_NEMO: timout' is not a known "
        "setting (did you mean 'timeout'?); as a message type it must be a string describing "
        "the message type, got 60"
    ]


def test_unknown_keys_in_nowcast_sections(large):
    def change(d):
        d["zmq"]["reply timout"] = 5
        d["run"]["enabled hosts"]["optimum"]["evnvars"] = "/x"
        d["checklist fle"] = "x"

    edit_config(large, change)
    assert sorted(problems(large)) == [
        "ERROR nowcast.yaml: key 'zmq: reply timout' is not a known key (did you mean 'reply timeout'?)",
        "WARNING nowcast.yaml: key 'checklist fle' is not a key nowcast reads (did you mean 'checklist file'?)",
        "WARNING nowcast.yaml: key 'run: enabled hosts: optimum: evnvars' is not a key nowcast reads (did you mean 'envvars'?)",
    ]


def test_a_wrong_value_gets_the_processes_error(large):
    edit_config(large, lambda d: d["zmq"]["ports"].update({"workers": "5555"}))
    assert problems(large) == [
        "ERROR nowcast.yaml: key 'zmq: ports: workers' must be a port number from 1 to 65535, got '5555'"
    ]


def test_a_message_type_a_worker_sends_must_be_registered(large, tmp_path):
    edit(tmp_path / "mysys/workers/get_onc_ctd.py", 'return "success"', 'return "sucess"')
    (line,) = problems(large)
    assert line.startswith("ERROR mysys/workers/get_onc_ctd.py:")
    assert "worker get_onc_ctd sends message type 'sucess', which is not registered" in line
    assert "(did you mean 'success'?)" in line


def test_a_need_must_be_registered(large, tmp_path):
    edit_config(large, lambda d: registry(d)["checklist_report"].pop("need"))
    (line,) = problems(large)
    assert "worker checklist_report sends message type 'need', which is not registered" in line


def test_a_launched_module_must_exist(large, tmp_path):
    edit(
        tmp_path / "mysys/next_workers.py",
        '"mysys.workers.make_runoff_file"',
        '"mysys.workers.make_runof_file"',
    )
    (line,) = problems(large)
    assert line.startswith("ERROR mysys/next_workers.py:")
    assert "worker module 'mysys.workers.make_runof_file' cannot be found" in line


def test_a_scheduled_module_must_exist(large):
    edit_config(
        large,
        lambda d: d["scheduled workers"].append(
            {"mysys.workers.nothing": {"every": "day", "at": "01:00"}}
        ),
    )
    (line,) = problems(large)
    assert line.startswith("ERROR nowcast.yaml: key 'scheduled workers: 4: mysys.workers.nothing'")
    assert "cannot be found" in line


def test_a_remote_module_missing_here_is_only_a_warning(large, tmp_path):
    edit(tmp_path / "mysys/next_workers.py", '"mysys.workers.run_fvcom"', '"fvcom_only_there.run"')
    (line,) = problems(large)
    assert line.startswith("WARNING mysys/next_workers.py:")
    assert "must be installed on host 'arbutus.cloud'" in line


def test_a_host_must_be_enabled(large, tmp_path):
    edit(tmp_path / "mysys/next_workers.py", 'host="optimum"', 'host="optimun"')
    (line,) = problems(large)
    assert line.startswith("ERROR mysys/next_workers.py:")
    assert "host 'optimun' is not under key 'run: enabled hosts'" in line
    assert "(did you mean 'optimum'?)" in line


def test_a_race_group_must_name_registered_workers(large, tmp_path):
    edit(tmp_path / "mysys/next_workers.py", '{"run_NEMO", "run_ww3"}', '{"run_NEMO", "run_WW3"}')
    (line,) = problems(large)
    assert "race group waits for 'run_WW3', which is not a registered worker" in line


def test_workers_and_after_functions_match(large, tmp_path):
    edit(tmp_path / "mysys/next_workers.py", "def after_split_results(", "def after_split_result(")
    found = problems(large)
    assert found[0] == (
        "ERROR nowcast.yaml: key 'message registry: workers: split_results' has no "
        "after_split_results function in next workers module mysys.next_workers (did you "
        "mean after_split_result?); its messages would be refused"
    )
    assert found[1].startswith("WARNING mysys/next_workers.py:")
    assert "after_split_result has no worker 'split_result'" in found[1]
    assert len(found) == 2


def test_a_launched_worker_must_be_registered(large, tmp_path):
    edit(tmp_path / "mysys/workers/ping_erddap.py", 'NAME = "ping_erddap"', 'NAME = "ping_erdap"')
    (line,) = problems(large)
    assert "worker 'ping_erdap' (module mysys.workers.ping_erddap) is not under key" in line


def test_a_mistyped_next_workers_module_is_one_line(large, tmp_path):
    edit_config(
        large, lambda d: d["message registry"].update({"next workers module": "mysys.next_worker"})
    )
    result = run_check(large.name, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        "ERROR nowcast.yaml: key 'message registry: next workers module' cannot import "
        "'mysys.next_worker': ModuleNotFoundError: No module named 'mysys.next_worker'"
    )


def test_ports_must_differ(large):
    edit_config(
        large,
        lambda d: d["zmq"]["ports"]["logging"]["workers"].append(d["zmq"]["ports"]["manager"]),
    )
    (line,) = problems(large)
    assert line.startswith(
        "ERROR nowcast.yaml: keys 'zmq: ports: manager' and 'zmq: ports: logging: workers: 3' must differ"
    )


def test_secret_keys_only_their_owner_reads(large, tmp_path):
    keys = tmp_path / "keys"
    subprocess.run([PY, "-m", "nowcast", "keys", str(keys)], check=True, capture_output=True)
    edit_config(large, lambda d: d["zmq"].update({"curve keys": str(keys)}))
    assert problems(large) == []
    (keys / "client.key_secret").chmod(0o640)
    (line,) = problems(large)
    assert "holds the secret key" in line and "client.key_secret, which others can read" in line
    assert "chmod 600" in line


def test_json_and_python_m_form(large, tmp_path):
    edit_config(large, lambda d: registry(d)["run_NEMO"].update({"retrys": 1}))
    result = subprocess.run(
        [PY, "-m", "nowcast.check", large.name, "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (problem,) = json.loads(result.stdout)
    assert problem["level"] == "ERROR"
    assert problem["key"] == "message registry: workers: run_NEMO: retrys"
    assert "did you mean 'retries'?" in problem["text"]


def test_an_unreadable_config_is_one_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("zmq: [\n")
    result = run_check("bad.yaml", tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("ERROR bad.yaml: not valid YAML:")
    assert 'in "bad.yaml", line' in result.stdout  # the file's name, not "<unicode string>"
    assert "Traceback" not in result.stderr


def test_the_manager_logs_the_checks_at_start_and_reload(system):
    system.worker_module("known")
    system.workers["known"]["timout"] = 5
    system.after(
        """
        def after_known(msg, config, checklist):
            return [NextWorker("known")] if msg.type == "never" else []
        """
    )
    system.start()
    wait_for(lambda: "config check:" in system.log(), what="the check at start")
    assert (
        "ERROR [manager] config check: ERROR nowcast.yaml: key 'message registry: workers: "
        "known: timout' is not a known setting (did you mean 'timeout'?)"
    ) in system.log().replace(str(system.dir) + "/", "")
    assert system.manager.poll() is None  # it runs on
    del system.workers["known"]["timout"]
    system.workers["known"]["sucess"] = system.workers["known"].pop("success")
    system.write()
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in system.log(), what="the reload")
    assert (
        "ERROR [manager] config check: ERROR known.py:12: worker known sends message type "
        "'success', which is not registered under key 'message registry: workers: known'"
    ) in system.log().replace(str(system.dir) + "/", "")


# hostile configs: any mix of nowcast's own keys (and near misses) and any values


def _keys() -> list[str]:
    from nowcast import schema

    names = set()

    def collect(section):
        for name, spec in section.keys.items():
            names.add(name)
            if isinstance(spec, schema.Section):
                collect(spec)
            elif isinstance(spec, schema.Entries):
                collect(spec.entry)

    collect(schema.SCHEMA)
    return sorted(names) + ["timout", "sucess", "success", "crash", "need", "w", "localhost"]


def _values():
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 70000),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["next_workers", "workers.x", "127.0.0.1", "0.0.0.0", "05:30"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(_keys()), inner, max_size=4),
        ),
        max_leaves=20,
    )


def test_no_config_makes_the_check_raise(tmp_path, monkeypatch):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    monkeypatch.chdir(tmp_path)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(_keys()), _values(), max_size=6))
    def check_any(data):
        path = tmp_path / "fuzz.yaml"
        path.write_text(yaml.safe_dump(data))
        for problem in check.check_file(str(path)):
            assert problem.level in ("ERROR", "WARNING")
            assert "\n" not in str(problem)  # one line per problem

    check_any()


@pytest.mark.timeout(60)
def test_a_mistyped_next_workers_module_stops_the_manager_with_one_line(system):
    system.write()
    config = system.config_file.read_text()
    system.config_file.write_text(
        config.replace("next workers module: next_workers", "next workers module: next_worker")
    )
    manager = system.spawn("nowcast.manager")
    assert manager.wait(30) == 2
    out = (system.dir / "nowcast.manager.out").read_text()
    assert "Traceback" not in out
    assert "cannot import 'next_worker': ModuleNotFoundError: No module named 'next_worker'" in out
