"""Helpers for the dashboard's tests: a history database written as the manager
writes it, a dashboard process, HTTP requests, and headless Chromium."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import free_port, missing_component, stop, wait_for

PY = sys.executable


class History:
    """A history database written through the manager's own schema."""

    def __init__(self, path: Path) -> None:
        from nowcast import history

        self.conn = history.open_for_writing(str(path))

    def run(
        self,
        worker: str,
        started: float,
        ended: float | None,
        outcome: str | None,
        *,
        launched_by: str = "scheduler",
        parent: str | None = None,
        tries: int = 1,
        args: list[str] | None = None,
        pid: int = 4242,
        day: str | None = None,
    ) -> str:
        run_id = f"{worker}:{pid}:{int(started * 1000)}"
        day = day or time.strftime("%Y-%m-%d", time.gmtime(started))
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (id, worker, module, args, host, launched_by, parent, launched,"
                " started, ended, outcome, exit_code, try, pid, cycle, day)"
                " VALUES (?, ?, ?, ?, 'localhost', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    worker,
                    f"workers.{worker}",
                    json.dumps(args or []),
                    launched_by,
                    parent,
                    started,
                    started,
                    ended,
                    outcome,
                    None if ended is None else (0 if outcome == "success" else 1),
                    tries,
                    pid,
                    parent or run_id,
                    day,
                ),
            )
            if outcome is not None:
                self.conn.execute(
                    "INSERT INTO messages (id, time, source, type, payload, reply, run)"
                    " VALUES (?, ?, ?, ?, ?, 'ack', ?)",
                    (f"m-{run_id}", ended, worker, outcome, json.dumps({"ok": outcome}), run_id),
                )
        return run_id

    def end(self, run_id: str, ended: float, outcome: str) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET ended = ?, outcome = ? WHERE id = ?", (ended, outcome, run_id)
            )

    def close(self) -> None:
        self.conn.close()


def web_config(directory: Path, workers: list[str], **web: Any) -> Path:
    """A config for a system in ``directory`` (no broker runs) with a ``web`` section."""
    import yaml

    config = {
        "checklist file": str(directory / "checklist.yaml"),
        "logging": {
            "version": 1,
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(directory / "nowcast.log"),
                    "formatter": "simple",
                    "level": "DEBUG",
                }
            },
            "formatters": {
                "simple": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"}
            },
            "root": {"level": "DEBUG", "handlers": ["file"]},
        },
        "zmq": {"host": "127.0.0.1", "ports": {"manager": free_port(), "workers": free_port()}},
        "message registry": {
            "next workers module": "next_workers",
            "workers": {w: {"checklist key": w, "success": "s", "failure": "f"} for w in workers},
        },
        "web": {"port": free_port(), **web},
    }
    path = directory / "nowcast.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Web:
    """A ``python -m nowcast.web`` process."""

    def __init__(self, config_file: Path, password: str | None = None) -> None:
        import yaml

        self.config_file = config_file
        config = yaml.safe_load(config_file.read_text())
        self.port = config["web"]["port"]
        self.password = password
        self.output = config_file.parent / "web.out"
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [PY, "-m", "nowcast.web", str(config_file)],
                cwd=config_file.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._up, timeout=20, what="the dashboard to answer")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the dashboard exited: {self.output.read_text()}")
        try:
            self.get("/static/style.css")
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def get(
        self, path: str, auth: str | None = "default", timeout: float = 10
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path)
        if auth == "default" and self.password:
            token = base64.b64encode(f"nowcast:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        elif auth not in (None, "default"):
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def stop(self) -> None:
        stop(self.process, timeout=10)


def chromium_path() -> str:
    """Debian's chromium (``.ci/run`` installs it); the tests fail without it in CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing_component("chromium is not installed (apt-get install chromium; .ci/run does)")
    return found


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
