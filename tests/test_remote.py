"""Workers on "another host": launched over a real ssh connection to an sshd the
test starts on loopback, with keys of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, missing_component, stop, wait_for

SSHD = "/usr/sbin/sshd"


def _install_sshd() -> str | None:
    """Install openssh-server when it is missing; the reason when that cannot be done."""
    if os.path.exists(SSHD):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "sshd is not installed, and this is not a root shell with apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # other installs may be running: wait for them (flock) rather than fail on dpkg's lock
    lock = ["flock", "/tmp/apt.lock"] if shutil.which("flock") else []
    install = [
        *lock,
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "openssh-server",
        "openssh-client",
    ]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run([*lock, "apt-get", "update"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            return f"could not install openssh-server: {result.stderr.strip()[-300:]}"
    if not os.path.exists(SSHD):
        return f"openssh-server was installed, but there is no {SSHD}"
    return None


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 that lets in the holder of a key made here."""
    why = _install_sshd()
    if why:
        missing_component(why)
    directory = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True
        )
    shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
    port = free_port()
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPidFile {directory / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\n"
        "PermitUserEnvironment no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = open(directory / "sshd.log", "wb")
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(directory / "sshd_config")], stdout=log, stderr=log
    )
    wait_for(lambda: "Server listening" in (directory / "sshd.log").read_text(), what="sshd")
    yield {"port": port, "key": str(directory / "client_key")}
    stop(process)


def remote_host(system, sshd, port=None) -> dict:
    envvars = system.dir / "envvars.sh"
    envvars.write_text(f"export PYTHONPATH={system.dir}\ncd {system.dir}\n")
    return {
        "ssh host": "127.0.0.1",
        "port": port or sshd["port"],
        "ssh options": [
            "-i",
            sshd["key"],
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
        ],
        "envvars": str(envvars),
        "python": sys.executable,
        "config file": str(system.config_file),
    }


@pytest.mark.timeout(90)
def test_a_worker_on_another_host_reports_and_its_logs_reach_the_aggregator(system, sshd):
    system.ports["logging"] = free_port()
    system.worker_module("start")
    system.worker_module(
        "far",
        "import logging, socket\nlogging.getLogger('far').info('hello from afar')\n"
        "return {'pid': os.getpid()}",
    )
    system.after(
        "def after_start(msg, config, checklist):\n    return [NextWorker('far', host='hpc')]\n"
        "def after_far(msg, config, checklist):\n    return []\n"
    )
    aggregated = system.with_aggregator("%(origin_pid)s [%(name)s] %(message)s")
    system.config_extra["run"] = {"enabled hosts": {"hpc": remote_host(system, sshd)}}
    system.write()
    system.spawn("nowcast.log_aggregator")
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "far" in system.checklist(), timeout=30, what="the remote worker's report")
    assert "ssh" in system.log() and "host='hpc'" in system.log()
    pid = system.checklist()["far"]["pid"]
    wait_for(
        lambda: aggregated.exists() and f"{pid} [far] hello from afar" in aggregated.read_text(),
        what="the remote worker's log line at the aggregator",
    )


@pytest.mark.timeout(60)
def test_an_unreachable_host_is_a_crash_naming_the_host_and_ssh_error(system, sshd):
    system.worker_module("start")
    system.register("far")
    system.after(
        "def after_start(msg, config, checklist):\n    return [NextWorker('far', host='down')]\n"
        "def after_far(msg, config, checklist):\n"
        "    open('after.log', 'a').write(msg.type)\n    return []\n"
    )
    system.config_extra["run"] = {
        "enabled hosts": {"down": remote_host(system, sshd, port=free_port())}
    }
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: (system.dir / "after.log").exists(), timeout=30, what="after_far")
    assert (system.dir / "after.log").read_text() == "crash"
    line = next(line for line in system.log().splitlines() if "handling it as a crash" in line)
    assert "host down" in line and "exited with code 255" in line
    assert re.search(r"ssh to down said: .*[Cc]onnection refused", line)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("required, outcome", [("", "1 skipped"), ("1", "1 failed")])
def test_a_missing_component_is_a_failure_where_the_environment_requires_it(
    tmp_path, required, outcome
):
    (tmp_path / "test_needs_it.py").write_text(
        "from conftest import missing_component\n\n"
        "def test_needs_it():\n    missing_component('no such daemon here')\n"
    )
    env = {**os.environ, "NOWCAST_TEST_REQUIRE_REAL": required}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")])
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rsf",
            "test_needs_it.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert outcome in result.stdout, result.stdout
    assert "no such daemon here" in result.stdout
