"""The web dashboard over HTTP: who may look, what each page's data says, live
updates, and that a worker's start-up never imports it. (Its pages in a real
browser: tests/test_web_browser.py.)"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import sys
import time

import pytest
from webtools import History, Web, web_config

PY = sys.executable


def start_refused(config_file) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "nowcast.web", str(config_file)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=config_file.parent,
    )


@pytest.mark.timeout(60)
def test_binding_beyond_loopback_without_a_password_is_refused(tmp_path):
    config = web_config(tmp_path, ["a"], bind="0.0.0.0")
    result = start_refused(config)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert str(config) in out and "'web: bind'" in out and "'0.0.0.0'" in out
    assert "web: password file" in out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "mode, text, expected",
    [
        (0o644, "long enough password", "can be read by others (mode 0644)"),
        (0o600, "short", "at least 8 characters"),
    ],
)
def test_a_weak_password_file_is_refused(tmp_path, mode, text, expected):
    secret = tmp_path / "password"
    secret.write_text(text)
    secret.chmod(mode)
    result = start_refused(
        web_config(tmp_path, ["a"], bind="0.0.0.0", **{"password file": str(secret)})
    )
    assert result.returncode == 2
    assert (
        expected in result.stdout + result.stderr and str(secret) in result.stdout + result.stderr
    )


@pytest.mark.timeout(60)
def test_an_unknown_web_key_is_refused(tmp_path):
    result = start_refused(web_config(tmp_path, ["a"], prot=8080))
    assert result.returncode == 2
    assert "'web: prot' is not a web setting" in result.stdout + result.stderr


@pytest.mark.timeout(60)
def test_with_a_password_every_request_needs_it(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("correct horse battery\n")
    secret.chmod(0o600)
    config = web_config(tmp_path, ["a"], bind="0.0.0.0", **{"password file": str(secret)})
    web = Web(config, password="correct horse battery")
    try:
        for path in ("/", "/graph", "/api/today.json", "/events", "/static/style.css"):
            status, body = web.get(path, auth=None)
            assert status == 401, path
        status, _ = web.get("/", auth="Basic " + base64.b64encode(b"nowcast:wrong one").decode())
        assert status == 401
        status, _ = web.get("/", auth="Bearer wrong")
        assert status == 401
        assert web.get("/")[0] == 200
        assert web.get("/api/today.json", auth="Bearer correct horse battery")[0] == 200
        connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 401
        assert response.getheader("WWW-Authenticate").startswith("Basic realm=")
    finally:
        web.stop()


@pytest.fixture
def history_system(tmp_path):
    """A dashboard on a history of a day: a chain of after_ launches, a failed try
    that was retried, a crash, a worker still running, and a race-condition group."""
    workers = ["prepare", "weather", "rivers", "model", "plots"]
    config = web_config(tmp_path, workers)
    (tmp_path / "checklist.yaml").write_text(
        "prepare:\n  run date: '2026-01-01'\nmodel:\n  temperatures: [1.5, 2.5]\n  needle: found me\n"
    )
    db = History(tmp_path / "checklist.yaml.history.sqlite")
    now = time.time()
    t = now - 60
    first = db.run("prepare", t, t + 1, "success")
    db.run("weather", t + 1, t + 3, "success", launched_by="after_prepare", parent=first)
    failed = db.run(
        "rivers", t + 1, t + 2, "failure", launched_by="after_prepare", parent=first, pid=5
    )
    rivers = db.run(
        "rivers", t + 3, t + 4, "success", launched_by="retry", parent=failed, tries=2, pid=6
    )
    model = db.run("model", t + 5, t + 9, "crash", launched_by="after_rivers", parent=rivers)
    db.run("plots", t + 10, None, None, launched_by="after_model", parent=model)
    web = Web(config)
    yield tmp_path, db, web
    web.stop()
    db.close()


@pytest.mark.timeout(60)
def test_today_shows_each_try_with_its_outcome(history_system):
    _, _, web = history_system
    today = web.json("/api/today.json")
    assert today["workers"] == ["prepare", "weather", "rivers", "model", "plots"]
    by_worker = {}
    for run in today["runs"]:
        by_worker.setdefault(run["worker"], []).append(run)
    assert [r["class"] for r in by_worker["rivers"]] == ["failure", "success"]
    assert by_worker["rivers"][0].get("retried") and not by_worker["rivers"][1].get("retried")
    assert [r["try"] for r in by_worker["rivers"]] == [1, 2]
    assert by_worker["model"][0]["class"] == "crash"
    # no manager answers, so a run without an end is shown running, not lost
    assert by_worker["plots"][0]["class"] == "running" and by_worker["plots"][0]["ended"] is None
    assert today["manager_answering"] is False and today["history"] is True
    status, page = web.get("/")
    assert status == 200 and b'id="timeline"' in page and b'"worker": "rivers"' in page


@pytest.mark.timeout(60)
def test_graph_edges_come_from_who_launched_what(history_system):
    _, _, web = history_system
    graph = web.json("/api/graph.json")
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert edges == {
        ("scheduler", "prepare"),
        ("prepare", "weather"),
        ("prepare", "rivers"),
        ("rivers", "model"),
        ("model", "plots"),
    }  # a retry is not an edge
    assert graph["state"]["model"]["class"] == "crash"
    assert graph["state"]["rivers"]["class"] == "success"


@pytest.mark.timeout(60)
def test_checklist_worker_and_run_pages(history_system):
    tmp_path, _, web = history_system
    checklist = web.json("/api/checklist.json")
    assert checklist["checklist"]["model"]["needle"] == "found me"
    assert [m["source"] for m in checklist["messages"]][:2] == ["model", "rivers"]  # newest first
    worker = web.json("/api/worker/rivers.json")
    assert [r["class"] for r in worker["runs"]] == ["failure", "success"]
    assert [r["try"] for r in worker["failures"]] == [1]
    # the run's log lines, found in the config's log file by time and name
    failed = worker["failures"][0]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(failed["started"] + 0.5))
    with open(tmp_path / "nowcast.log", "a") as log:
        log.write(f"{stamp},250 ERROR [rivers] missing rivers forcing file\n")
        log.write("Traceback (most recent call last):\n  oops\n")
        log.write(f"{stamp},300 INFO [weather] not this worker's line\n")
    run = web.json(f"/api/run/{failed['id']}.json")
    assert run["messages"][0]["type"] == "failure"
    assert run["log"]["lines"] == [
        f"{stamp},250 ERROR [rivers] missing rivers forcing file",
        "Traceback (most recent call last):",
        "  oops",
    ]
    assert web.get("/api/run/nonesuch.json")[0] == 404
    for path in ("/checklist", "/worker/rivers", "/system", "/graph"):
        assert web.get(path)[0] == 200, path


@pytest.mark.timeout(60)
def test_pages_follow_the_history_live(history_system):
    """The event stream announces a new run within a second of its commit."""
    _, db, web = history_system
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
    connection.request("GET", "/events")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    first = response.readline() + response.readline() + response.readline()
    version = int(first.split(b"data: ")[1].split(b"\n")[0])
    time.sleep(0.5)  # let the dashboard's watch see the database as it is
    before = time.monotonic()
    db.run("weather", time.time(), None, None, launched_by="by hand", pid=77)
    line = b""
    while not line.startswith(b"data: "):
        line = response.readline()
    assert int(line[6:]) > version
    assert time.monotonic() - before < 1.0
    assert any(r["pid"] == 77 for r in web.json("/api/today.json")["runs"])
    # supervisord's TERM stops it promptly, open event streams and all
    web.process.terminate()
    assert web.process.wait(5) == 0
    connection.close()


@pytest.mark.timeout(60)
def test_without_a_history_the_pages_say_so(tmp_path):
    web = Web(web_config(tmp_path, ["a"]))
    try:
        today = web.json("/api/today.json")
        assert today["history"] is False and today["runs"] == []
        assert web.get("/")[0] == 200 and web.get("/graph")[0] == 200
    finally:
        web.stop()
    assert not (tmp_path / "checklist.yaml.history.sqlite").exists()  # read-only: never made


@pytest.mark.timeout(60)
def test_a_worker_never_imports_the_dashboards_libraries(system):
    """Worker start-up must not change: nothing of the web extra is imported."""
    system.register("sleep")
    system.after("def after_sleep(msg, config, checklist):\n    return []\n")
    system.start()
    result = subprocess.run(
        [
            PY,
            "-X",
            "importtime",
            "-m",
            "nowcast.workers.sleep",
            str(system.config_file),
            "--sleep-time",
            "0",
        ],
        cwd=system.dir,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if "|" in line
    }
    assert "yaml" in imported  # the check sees imports at all
    assert not imported & {"starlette", "uvicorn", "jinja2", "anyio", "h11"}, imported
    assert "nowcast.web" not in result.stderr


def test_the_port_setting_is_checked(tmp_path):
    result = start_refused(web_config(tmp_path, ["a"], port=70000))
    assert result.returncode == 2
    assert "'web: port' must be a port number" in result.stdout + result.stderr


@pytest.mark.timeout(60)
def test_hostile_names_and_values_stay_text(history_system):
    tmp_path, _, web = history_system
    (tmp_path / "checklist.yaml").write_text(
        "'<b>key</b>':\n  note: '</script><script>window.pwned = 1</script>'\n"
    )
    status, body = web.get("/checklist")
    assert status == 200
    assert b"</script><script>window.pwned" not in body  # the page data cannot end its script
    assert web.json("/api/checklist.json")["checklist"]["<b>key</b>"]["note"].endswith("</script>")
    status, body = web.get("/worker/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert status == 200 and b"<img src=x" not in body and b"&lt;img src=x" in body
    assert web.get("/static/../nowcast.yaml")[0] == 404
    assert web.get("/static/%2e%2e/nowcast.yaml")[0] == 404
    assert web.get("/api/run/..%2F..%2Fnowcast.yaml.json")[0] == 404
    assert web.get("/api/nonesuch.json")[0] == 404


@pytest.mark.timeout(90)
def test_held_results_retries_and_scheduled_launches_come_from_the_live_manager(system):
    """A race group's reported member is drawn held, a retry waiting is shown
    with its due time, and a launch the scheduler will make soon is a marker."""
    from conftest import free_port, wait_for

    system.worker_module("fork")
    system.worker_module("quick")
    system.worker_module("slow", "time.sleep(30); return {}", timeout=60)
    system.worker_module("flaky", "raise WorkerError('down')", retries=1, **{"retry delay": 60})
    system.after(
        """
        def after_fork(msg, config, checklist):
            return [NextWorker("quick"), NextWorker("slow"), NextWorker("flaky")], {"quick", "slow"}
        def after_quick(msg, config, checklist):
            return []
        def after_slow(msg, config, checklist):
            return []
        def after_flaky(msg, config, checklist):
            return []
        """
    )
    system.config_extra = {
        "web": {"port": free_port()},
        "scheduled workers": [{"fork": {"cron": "* * * * *"}}],
    }
    system.start()
    web = Web(system.config_file)
    try:
        assert system.run_worker("fork").returncode == 0

        def live_today():
            today = web.json("/api/today.json")
            held = [r for r in today["runs"] if r.get("held")]
            return today if held and today["retries"] else None

        today = wait_for(live_today, timeout=30, what="a held result and a retry waiting")
        assert [r["worker"] for r in today["runs"] if r.get("held")] == ["quick"]
        assert today["groups"] == [{"waiting": ["slow"], "reported": ["quick"], "then": []}]
        [retry] = today["retries"]
        assert retry["worker"] == "flaky" and retry["try"] == 2
        assert retry["due"] > time.time() + 30
        [flaky] = [r for r in today["runs"] if r["worker"] == "flaky"]
        assert flaky["class"] == "failure"
        assert [r["class"] for r in today["runs"] if r["worker"] == "slow"] == ["running"]
        soon = [s for s in today["scheduled"] if s["worker"] == "fork"]
        if time.strftime("%H:%M", time.gmtime(time.time() + 60)) != "00:00":  # not past midnight
            assert soon and 0 < soon[0]["at"] - time.time() <= 61
    finally:
        web.stop()


@pytest.mark.parametrize(
    "moment, hours",
    [
        ("2026-11-01T12:00:00-08:00", 25),  # Vancouver leaves daylight-saving time
        ("2026-03-08T12:00:00-07:00", 23),  # and enters it
        ("2026-06-01T12:00:00-07:00", 24),
    ],
)
def test_today_is_the_day_of_the_schedulers_time_zone_across_dst(moment, hours):
    from datetime import datetime

    from nowcast.config import Config
    from nowcast.web.queries import cycle_day

    config = Config()
    config["scheduler"] = {"timezone": "America/Vancouver"}
    day, start, end, zone = cycle_day(config, datetime.fromisoformat(moment).timestamp())
    assert day == moment[:10] and zone == "America/Vancouver"
    assert end - start == hours * 3600


@pytest.mark.parametrize("configured", [None, "Not/A_Zone"])
def test_without_a_scheduler_time_zone_the_day_is_the_machines_as_in_the_history(
    monkeypatch, configured
):
    # the history counts a run's day in the machine's time zone when the config
    # names none (or none that exists): the dashboard's Today must be that day
    from datetime import datetime

    from nowcast.config import Config
    from nowcast.recorder import zone_of
    from nowcast.web.queries import cycle_day

    monkeypatch.setenv("TZ", "America/Vancouver")
    time.tzset()
    try:
        config = Config()
        if configured:
            config["scheduler"] = {"timezone": configured}
        moment = datetime.fromisoformat("2026-06-01T20:30:00-07:00").timestamp()  # 03:30 UTC
        day, start, end, zone = cycle_day(config, moment)
        history_day = datetime.fromtimestamp(moment, zone_of(config)).date().isoformat()
        assert day == history_day == "2026-06-01"
        assert zone == "America/Vancouver"
        assert end - start == 24 * 3600
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_machines_zone_is_named_as_the_zone_database_names_it_and_utc_as_utc(monkeypatch):
    from nowcast.web.queries import machine_zone_name

    for tz, expected in (
        ("Europe/Paris", "Europe/Paris"),
        (":America/Halifax", "America/Halifax"),
        ("Etc/UTC", "UTC"),
    ):
        monkeypatch.setenv("TZ", tz)
        assert machine_zone_name() == expected
    monkeypatch.setenv("TZ", "not a zone")  # then what the machine's files say
    assert machine_zone_name() != "not a zone"
