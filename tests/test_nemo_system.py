"""An unmodified NEMO_Nowcast-style system (tests/nemo_system) beside nowcast.

The system's own package is named ``nowcast``, its code imports ``nemo_nowcast``,
its config is in NEMO_Nowcast's form (distributed logging ports, a ``logging:
publisher`` section). It is installed editable into a virtual environment of its
own, whose other packages (nowcast, editable, and its dependencies) are those of
the environment running these tests. Then its own test suite runs, and it runs
through a day with real processes, started as ``python -m nemo_nowcast.X`` and as
``python -m nowcast.X``.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest
import yaml
from conftest import free_port, stop, wait_for

SYSTEM = Path(__file__).parent / "nemo_system"


SETUPTOOLS_PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "estuary-nowcast"
version = "24.1"
requires-python = ">=3.11"

[tool.setuptools]
packages = ["nowcast", "nowcast.workers"]
"""


def install(root: Path, backend: str) -> tuple[Path, Path, Path]:
    """The system copied, and installed editable (by pip) into a new environment:
    with hatchling, a path entry; with setuptools, an import finder of its own."""
    system = root / "estuary"
    shutil.copytree(SYSTEM, system, ignore=shutil.ignore_patterns("__pycache__"))
    if backend == "setuptools":
        (system / "pyproject.toml").write_text(SETUPTOOLS_PYPROJECT)
    env_dir = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # nowcast and the dependencies: this environment's packages
    (Path(site) / "_test_dependencies.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n"
    )
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", python, "install"),
            *("--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-e", system),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if backend == "setuptools":  # the install is an import finder, not a path entry
        assert list(Path(site).glob("__editable__*finder.py")), os.listdir(site)
    return system, env_dir, python


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return install(tmp_path_factory.mktemp("nemo_system"), "hatchling")


@pytest.mark.timeout(300)
def test_the_systems_own_test_suite_passes_installed_by_setuptools(tmp_path_factory, tmp_path):
    system, env_dir, python = install(tmp_path_factory.mktemp("nemo_system"), "setuptools")
    result = subprocess.run(
        [python, "-m", "pytest", system / "tests", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,  # not the checkout: the system comes from its install's finder
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "21 passed" in result.stdout, result.stdout
    result = subprocess.run(
        [python, "-m", "nowcast.workers.download_weather", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.startswith("usage: python -m nowcast.workers.download_weather"), (
        result.stderr
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_the_systems_own_test_suite_passes(installed, where, tmp_path):
    system, env_dir, python = installed
    # in its checkout its package comes first on sys.path; elsewhere, from its install
    cwd = system if where == "checkout" else tmp_path
    result = subprocess.run(
        [python, "-m", "pytest", system / "tests", "-q", "-p", "no:cacheprovider"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "21 passed" in result.stdout, result.stdout


@pytest.fixture
def weather_server():
    """The weather service, on loopback."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"10\n11\n12\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/weather.txt"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("package", ["nemo_nowcast", "nowcast"])
def test_the_system_runs_a_day(installed, weather_server, tmp_path, package):
    system, env_dir, python = installed
    config = yaml.safe_load((system / "config" / "nowcast.yaml").read_text())
    config["weather"]["url"] = weather_server
    ports = config["zmq"]["ports"]
    ports["manager"], ports["workers"] = free_port(), free_port()
    ports["logging"] = {
        name: free_port() if not isinstance(port, list) else [free_port() for _ in port]
        for name, port in ports["logging"].items()
        if name != "run_NEMO"
    } | {"run_NEMO": ports["logging"]["run_NEMO"]}
    config_file = tmp_path / "nowcast.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "NOWCAST_LOGS": str(logs),
        "NOWCAST_ENV": str(env_dir),
        "NOWCAST_DATA": str(tmp_path / "data"),
    }
    procs = []
    try:
        for name in ("log_aggregator", "message_broker", "manager"):
            with open(tmp_path / f"{name}.out", "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [python, "-m", f"{package}.{name}", config_file],
                        cwd=tmp_path,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        log = logs / "nowcast.log"
        wait_for(
            lambda: log.exists() and "next workers module loaded" in log.read_text(),
            timeout=60,
            what="the manager",
        )
        result = subprocess.run(
            [python, "-m", "nowcast.workers.download_weather", config_file],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        checklist_file = logs / "nowcast_checklist.yaml"
        # the day: download_weather, make_forcing and sleep (a race group),
        # clear_checklist, rotate_logs
        wait_for(
            lambda: "log rotation" in (yaml.safe_load(checklist_file.read_text()) or {}),
            timeout=120,
            what="the end of the day",
        )
        # clear_checklist logged the day's checklist; rotate_logs rolled that file
        day = yaml.safe_load((logs / "checklist.log.1").read_text().split("checklist:\n", 1)[1])
        assert day["forcing"]["mean temperature"] == 11.0
        assert set(day) == {"weather", "sleepyhead", "forcing"}
        rotated = yaml.safe_load(checklist_file.read_text())["log rotation"]["log files"]
        assert {Path(p).name for p in rotated} == {
            "nowcast.log",
            "nowcast.debug.log",
            "checklist.log",
        }
        aggregated = (logs / "nowcast.log.1").read_text()
        for process in ("download_weather", "make_forcing", "sleep", "manager"):
            assert f"[{process}]" in aggregated, process
        for process in procs:
            assert process.poll() is None
    finally:
        for process in procs:
            stop(process)
    outputs = "".join(p.read_text() for p in tmp_path.glob("*.out"))
    assert "Traceback" not in outputs, outputs
