"""The README's "Operating it" commands work as pasted, in order, into a fresh
shell after ``make demo``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent

# A command that waits for the manager supervisord has just started: on a busy
# machine its start can take longer than status's 5 s, as a person pasting
# would see once before trying again. It is run again until it succeeds, for at
# most 60 s.
SETTLING = ("nowcast status ",)


def operating_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Operating it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)[1]
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture
def checkout(tmp_path):
    """A copy of the repository's example system with free ports, its venv
    linked in, as `make demo` leaves it; stopped afterwards whatever happens."""
    for name in ("workers", "scripts", "config"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = (tmp_path / "config" / "nowcast.yaml").read_text()
    config = config.replace("manager: 5775", f"manager: {free_port()}")
    config = config.replace("workers: 5776", f"workers: {free_port()}")
    config = config.replace("port: 5780", f"port: {free_port()}")  # the dashboard's
    (tmp_path / "config" / "nowcast.yaml").write_text(config)
    ini = (ROOT / "supervisord.ini").read_text().replace("9775", str(free_port()))
    (tmp_path / "supervisord.ini").write_text(ini)
    (tmp_path / ".venv").symlink_to(VENV)
    yield tmp_path
    subprocess.run(
        ["bash", "-c", f"{operating_commands()[0]}\nnowcast stop config/nowcast.yaml --grace 2"],
        cwd=tmp_path,
        env=fresh_env(),
        capture_output=True,
        timeout=120,
    )


def fresh_env() -> dict:
    """What a new login shell has: no virtual environment, no NOWCAST_ variables."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8"}


def script(commands: list[str]) -> str:
    lines = []
    for command in commands:
        quoted = command.replace("'", "'\\''")
        lines.append(f"echo '>>> {quoted}'")
        if command.startswith(SETTLING):
            lines.append(
                f"for try in $(seq 120); do\n{command}\n"
                'rc=$?; [ $rc -eq 0 ] && break; sleep 0.5\ndone; echo "<<< rc=$rc"'
            )
        else:
            lines.append(f'{command}\necho "<<< rc=$?"')
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_the_operating_commands_work_as_pasted_after_make_demo(checkout):
    env = fresh_env()
    demo_env = {
        **env,
        "NOWCAST_ENV": str(checkout / ".venv"),
        "NOWCAST_LOGS": str(checkout / "logs"),
        "NOWCAST_DATA": str(checkout / "data"),
    }
    demo = subprocess.run(  # what make demo runs, once its venv is made
        ["scripts/demo.sh"], cwd=checkout, env=demo_env, capture_output=True, text=True, timeout=150
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr

    commands = operating_commands()
    assert commands[0].startswith("export PATH=")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input=script(commands),
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout
    ran = re.findall(r"^>>> (.*)$", out, re.M)
    codes = re.findall(r"^<<< rc=(\d+)$", out, re.M)
    assert ran == commands, out + result.stderr
    failed = [(c, code) for c, code in zip(commands, codes, strict=True) if code != "0"]
    assert failed == [], out + result.stderr
    assert "command not found" not in result.stderr
    # what the commands say
    assert re.search(r"manager\s+(RUNNING|STARTING)", out), out  # supervisorctl status
    assert "Checklist keys:" in out  # nowcast status
    assert "config/nowcast.yaml: no problems found" in out
    assert re.search(r"^\d+\s+supervisord\s+", out, re.M)  # nowcast ps
    assert re.search(r"^\d+\s+manager\s+", out, re.M)
    stop = out.split(">>> nowcast stop config/nowcast.yaml", 1)[1]
    assert "nothing of the system of config/nowcast.yaml is running\n<<< rc=0" in stop
