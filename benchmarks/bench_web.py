"""The dashboard's render time with a large history: 60 workers, 400 days.

``fill_history`` writes a history database as a busy system's manager would have
after 400 days (one run of each worker a day, a retry now and then, a message
per run); ``run_web`` starts ``python -m nowcast.web`` on it and times each page
over HTTP on loopback, against the floor of a small static file from the same
server (what HTTP itself costs).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

PY = sys.executable


def fill_history(
    path: str, workers: int = 60, days: int = 400, now: float | None = None
) -> list[str]:
    """Write ``days`` days of runs of ``workers`` workers into the database at
    ``path``; return the workers' names. Each day's chain starts at 05:30 UTC."""
    from nowcast import history

    now = time.time() if now is None else now
    names = [f"worker_{i:02d}" for i in range(workers)]
    rng = random.Random(42)
    conn = history.open_for_writing(path)
    runs, messages = [], []
    today = int(now // 86400) * 86400
    for day_index in range(days, -1, -1):
        day0 = today - day_index * 86400
        day = time.strftime("%Y-%m-%d", time.gmtime(day0))
        t = day0 + 5.5 * 3600
        parent = "scheduler"
        for n, name in enumerate(names):
            tries = 2 if rng.random() < 0.05 else 1
            for attempt in range(1, tries + 1):
                start = t + rng.uniform(0.01, 0.2)
                length = (5 + n % 7 * 20) * rng.uniform(0.8, 1.3)
                end = start + length
                if end > now:
                    break
                outcome = (
                    "failure"
                    if attempt < tries
                    else ("crash" if rng.random() < 0.01 else "success")
                )
                run_id = f"{day}-{name}-{attempt}"
                runs.append(
                    (
                        run_id,
                        name,
                        f"system.workers.{name}",
                        json.dumps(["--run-date", day]),
                        "localhost",
                        parent if attempt == 1 else "retry",
                        None,
                        start - 0.01,
                        start,
                        end,
                        outcome,
                        0 if outcome == "success" else 1,
                        None,
                        attempt,
                        10000 + n,
                        None,
                        day,
                        day,
                    )
                )
                messages.append(
                    (
                        f"m-{run_id}",
                        end,
                        name,
                        outcome,
                        json.dumps({"run date": day, "files": [f"/data/{day}/{name}.nc"]}),
                        "ack",
                        run_id,
                    )
                )
                t = end
            parent = f"after_{name}"
    conn.execute("BEGIN")  # one transaction (the connection autocommits otherwise)
    conn.executemany(
        "INSERT INTO runs (id, worker, module, args, host, launched_by, parent, launched, "
        "started, ended, outcome, exit_code, signal, try, pid, job_id, cycle, day) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany(
        "INSERT INTO messages (id, time, source, type, payload, reply, run) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        messages,
    )
    conn.execute("COMMIT")
    conn.close()
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def run_web(runs: int, show) -> list[dict]:
    """Each page's time to answer, median of ``runs`` rounds, next to a static file's."""
    with tempfile.TemporaryDirectory(prefix="nowcast-bench-web-") as tmp:
        directory = Path(tmp)
        checklist = directory / "checklist.yaml"
        names = fill_history(f"{checklist}.history.sqlite")
        checklist.write_text(
            yaml.safe_dump(
                {n: {"run date": "2026-01-01", "files": [f"/data/{n}.nc"]} for n in names}
            )
        )
        port = _free_port()
        config = {
            "checklist file": str(checklist),
            "logging": {"version": 1, "handlers": {}},
            "zmq": {
                "host": "127.0.0.1",
                "ports": {"manager": _free_port(), "workers": _free_port()},
            },
            "message registry": {
                "next workers module": "next_workers",
                "workers": {
                    n: {"checklist key": n, "success": "s", "failure": "f", "crash": "c"}
                    for n in names
                },
            },
            "scheduled workers": [{"system.workers.worker_00": {"every": "day", "at": "05:30"}}],
            "web": {"port": port},
        }
        (directory / "nowcast.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        server = subprocess.Popen(
            [PY, "-m", "nowcast.web", str(directory / "nowcast.yaml")],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    _get(base + "/static/style.css")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the dashboard did not start") from None
                    time.sleep(0.1)
            pages = {
                "today": "/",
                "graph": "/graph",
                "checklist": "/checklist",
                "worker": "/worker/worker_30",
                "system": "/system",
                "today data (live update)": "/api/today.json",
            }
            for path in pages.values():
                _get(base + path)  # warm up
            times: dict[str, list[float]] = {name: [] for name in pages}
            floor: list[float] = []
            for _ in range(runs):
                for name, path in pages.items():
                    times[name].append(_get(base + path))
                floor.append(_get(base + "/static/vendor/README"))
        finally:
            server.terminate()
            server.wait(10)
        results = []
        for name, values in times.items():
            results.append(
                show(f"web page: {name}", values, "ms", "static file", floor, "< 200 ms")
            )
        return results


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, os.path.dirname(__file__))
    from run import show

    run_web(5, show)
