"""Events and their actions, with real receivers on loopback: a script writing
its standard input to a file, an HTTP(S) server collecting webhook posts, an
SMTP server (aiosmtpd) collecting mails."""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme
from conftest import free_port, wait_for

from nowcast import history
from nowcast.config import Config
from nowcast.errors import ConfigError
from nowcast.events import Event, EventActions, rules_of

RECORDER_SCRIPT = """#!{python}
import json, os, sys
data = json.load(sys.stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("NOWCAST_")}}
with open({out!r}, "a") as f:
    f.write(json.dumps({{"stdin": data, "env": env, "argv": sys.argv[1:]}}) + "\\n")
"""


def config_with(events, tmp_path: Path) -> Config:
    config = Config()
    config.file = str(tmp_path / "nowcast.yaml")
    config["events"] = events
    return config


def recorder_script(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "notified.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(RECORDER_SCRIPT.format(python=sys.executable, out=str(out)))
    script.chmod(0o755)
    return script, out


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def notifications(db: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT action, outcome, events, event, worker, detail FROM notifications ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


def failure(worker="run_model", n=0) -> Event:
    return Event("failure", time.time(), worker, f"{worker}:1:{n}", {"summary": f"{worker} failed"})


# the rules


@pytest.mark.parametrize(
    "events, complaint",
    [
        ({"on": "failure"}, "must be a list of rules"),
        ([{"on": "failure"}], "exactly one action"),
        ([{"on": "explosion", "command": ["true"]}], "unknown event 'explosion'"),
        ([{"on": [], "command": ["true"]}], "must be an event or a list of events"),
        ([{"on": "late", "command": "true", "webhook": "https://x"}], "exactly one action"),
        ([{"on": "late", "command": []}], "events: 0: command' must be a program"),
        ([{"on": "late", "command": "true", "timeout": -1}], "events: 0: timeout' must be"),
        ([{"on": "late", "webhook": "ftp://x"}], "https:// (or http://) URL"),
        (
            [{"on": "late", "webhook": {"url": "https://x", "colour": 1}}],
            "unknown key(s) ['colour']",
        ),
        ([{"on": "late", "workers": "a", "email": {"to": "nobody"}}], "to must be an address"),
        ([{"on": "late", "email": {"to": "a@b", "smtp": {"port": 25}}}], "smtp must be a mapping"),
        ([{"on": "late", "command": "true", "when": 1}], "unknown key(s) ['when']"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_file_key_and_value(tmp_path, events, complaint):
    with pytest.raises(ConfigError) as e:
        rules_of(config_with(events, tmp_path))
    assert complaint in str(e.value) and "nowcast.yaml: key 'events" in str(e.value)


def test_a_login_file_others_can_read_is_refused(tmp_path):
    login = tmp_path / "smtp-login"
    login.write_text("user\npassword\n")
    login.chmod(0o640)
    rule = {
        "on": "late",
        "email": {"to": "ops@example.org", "smtp": {"host": "h", "login file": str(login)}},
    }
    with pytest.raises(ConfigError, match="readable by its owner only"):
        rules_of(config_with([rule], tmp_path))
    login.chmod(0o600)
    assert rules_of(config_with([rule], tmp_path))[0].action.kind == "email"
    plain = {
        **rule,
        "email": {
            **rule["email"],
            "smtp": {"host": "h", "starttls": False, "login file": str(login)},
        },
    }
    with pytest.raises(ConfigError, match="never sent in the clear"):
        rules_of(config_with([plain], tmp_path))


def test_rules_read_from_yaml_where_a_bare_on_is_a_boolean(tmp_path):
    import yaml

    text = "- on: [failure, late]\n  workers: [run_model]\n  command: [/bin/true]\n"
    (rule,) = rules_of(config_with(yaml.load(text, Loader=yaml.CSafeLoader), tmp_path))
    assert rule.on == {"failure", "late"} and rule.workers == {"run_model"}


def test_rules_match_events_and_workers(tmp_path):
    rules = rules_of(
        config_with(
            [
                {"on": ["failure", "crash"], "workers": ["run_model"], "command": "true"},
                {"on": "cycle complete", "command": ["true"]},
            ],
            tmp_path,
        )
    )
    assert rules[0].matches(failure("run_model"))
    assert not rules[0].matches(failure("get_weather"))
    assert not rules[1].matches(failure("run_model"))
    assert rules[1].matches(Event("cycle complete", 0.0))


# command


@pytest.mark.timeout(30)
def test_command_gets_the_event_on_stdin_and_in_its_environment(tmp_path):
    script, out = recorder_script(tmp_path)
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = rules_of(
        config_with([{"on": "failure", "command": [str(script), "--urgent"]}], tmp_path)
    )
    actions = EventActions(rules, db)
    actions.publish(failure())
    actions.publish(Event("late", time.time(), "run_model"))  # no rule for it
    actions.close()
    (got,) = lines(out)
    assert got["argv"] == ["--urgent"]
    assert got["stdin"]["event"] == "failure" and got["stdin"]["worker"] == "run_model"
    assert got["stdin"]["summary"] == "run_model failed"
    assert got["env"]["NOWCAST_EVENT"] == "failure" and got["env"]["NOWCAST_WORKER"] == "run_model"
    assert got["env"]["NOWCAST_SUMMARY"] == "nowcast failure: run_model failed"
    assert notifications(db) == [("command", "sent", 1, "failure", "run_model", "exit code 0")]


@pytest.mark.timeout(30)
def test_a_failing_or_hanging_command_is_recorded_never_fatal(tmp_path):
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = rules_of(
        config_with(
            [
                {"on": "failure", "command": ["sh", "-c", "echo no pager here; exit 3"]},
                {"on": "failure", "command": ["sleep", "30"], "timeout": 0.5},
                {"on": "failure", "command": [str(tmp_path / "absent")]},
            ],
            tmp_path,
        )
    )
    actions = EventActions(rules, db)
    started = time.monotonic()
    actions.publish(failure())
    assert time.monotonic() - started < 0.5  # publishing never waits for an action
    actions.close(wait=10)
    got = notifications(db)
    assert [(a, o) for a, o, *_ in got] == [("command", "failed")] * 3
    assert got[0][5] == "exited with code 3: no pager here"
    assert "killed" in got[1][5] and "No such file" in got[2][5]


@pytest.mark.timeout(30)
def test_a_flood_is_sent_as_a_few_notifications_then_one_digest(tmp_path):
    script, out = recorder_script(tmp_path)
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = rules_of(config_with([{"on": "failure", "command": [str(script)]}], tmp_path))
    now = [1000.0]  # the actions' clock, moved by the test
    actions = EventActions(rules, db, window=1.0, burst=3, clock=lambda: now[0])
    for n in range(100):
        actions.publish(failure(f"worker{n % 7}", n))
    wait_for(lambda: len(lines(out)) == 3, timeout=20, what="three notifications")
    time.sleep(1.5)  # the digest waits for the end of the minute, not for the real clock
    assert len(lines(out)) == 3
    now[0] += 1.0
    wait_for(lambda: len(lines(out)) == 4, timeout=20, what="the digest")
    actions.close()
    got = lines(out)
    assert [g["stdin"]["event"] for g in got] == ["failure"] * 3 + ["digest"]
    digest = got[3]["stdin"]
    assert digest["count"] == 97 and len(digest["events"]) == 97
    assert got[3]["env"]["NOWCAST_EVENT_COUNT"] == "97"
    assert digest["summary"].startswith("nowcast: 97 events: failure x97 (worker0, worker1")
    assert [row[2] for row in notifications(db)] == [1, 1, 1, 97]


@pytest.mark.timeout(30)
def test_a_full_queue_drops_events_and_says_so(tmp_path):
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = rules_of(config_with([{"on": "failure", "command": ["sleep", "0.3"]}], tmp_path))
    actions = EventActions(rules, db, size=2, burst=100)
    for n in range(10):
        actions.publish(failure(n=n))
    actions.close(wait=10)
    outcomes = [row[1] for row in notifications(db)]
    assert "dropped" in outcomes and outcomes.count("sent") <= 3
    dropped = [row for row in notifications(db) if row[1] == "dropped"]
    assert sum(int(row[5].split()[0]) for row in dropped) + outcomes.count("sent") == 10


# webhook


class Collector(http.server.BaseHTTPRequestHandler):
    posts: list
    answers: list

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, dict(self.headers), json.loads(body)))
        code = self.answers.pop(0) if self.answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_receiver():
    servers = []

    def start(answers=(), tls: ssl.SSLContext | None = None):
        handler = type("Handler", (Collector,), {"posts": [], "answers": list(answers)})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{server.server_port}/hooks/abc", handler.posts

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(30)
def test_webhook_posts_json_with_a_slack_text_and_retries_a_server_error(tmp_path, http_receiver):
    url, posts = http_receiver(answers=[503])
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rule = {"on": "late", "webhook": {"url": url + "?token=secret", "headers": {"X-Team": "ops"}}}
    actions = EventActions(rules_of(config_with([rule], tmp_path)), db)
    actions.publish(Event("late", time.time(), "run_model", None, {"summary": "run_model is late"}))
    actions.close(wait=10)
    assert len(posts) == 2  # a 503, then a success
    path, headers, body = posts[1]
    assert path == "/hooks/abc?token=secret" and headers["X-Team"] == "ops"
    assert headers["Content-Type"] == "application/json"
    assert body["text"] == "nowcast late: run_model is late" and body["worker"] == "run_model"
    ((action, outcome, _, _, _, detail),) = notifications(db)
    assert (action, outcome, detail) == ("webhook", "sent", "HTTP 200 (try 2)")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT target FROM notifications").fetchone()[0] == url  # no token


@pytest.mark.timeout(30)
def test_webhook_over_https_checks_the_certificate(tmp_path, http_receiver):
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    url, posts = http_receiver(tls=tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = [
        {"on": "late", "webhook": {"url": url, "ca file": str(ca_file)}},
        {"on": "late", "webhook": {"url": url, "tries": 1}},  # the system's CAs: not trusted
    ]
    actions = EventActions(rules_of(config_with(rules, tmp_path)), db)
    actions.publish(Event("late", time.time(), "run_model"))
    actions.close(wait=10)
    assert len(posts) == 1
    (trusted, untrusted) = notifications(db)
    assert trusted[1] == "sent"
    assert untrusted[1] == "failed" and "CERTIFICATE_VERIFY_FAILED" in untrusted[5]


@pytest.mark.timeout(30)
def test_webhook_gives_up_on_a_client_error_and_on_no_server(tmp_path, http_receiver):
    url, posts = http_receiver(answers=[404])
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    rules = [
        {"on": "late", "webhook": url},
        {"on": "late", "webhook": {"url": f"http://127.0.0.1:{free_port()}/x", "tries": 2}},
    ]
    actions = EventActions(rules_of(config_with(rules, tmp_path)), db)
    actions.publish(Event("late", time.time(), "run_model"))
    actions.close(wait=10)
    assert len(posts) == 1  # no retry after a 404
    (not_found, refused) = notifications(db)
    assert not_found[1] == "failed" and "HTTP 404" in not_found[5]
    assert refused[1] == "failed" and "after 2 tries" in refused[5]


# email


@pytest.fixture
def smtp_receiver(tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Handler:
        def __init__(self):
            self.mails = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.mails.append((envelope.rcpt_tos, envelope.content.decode(), session.authenticated))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"nowcast",
            b"s3cret",
        )
        # handled=False: aiosmtpd answers a rejected login with 535 (by default it
        # leaves the answer to the authenticator, and the client waits for ever)
        return AuthResult(success=ok, handled=False)

    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler = Handler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield controller.port, str(ca_file), handler.mails
    controller.stop()


@pytest.mark.timeout(30)
def test_email_goes_through_starttls_with_a_login_from_an_owner_only_file(tmp_path, smtp_receiver):
    port, ca_file, mails = smtp_receiver
    login = tmp_path / "smtp-login"
    login.write_text("nowcast\ns3cret\n")
    os.chmod(login, 0o600)
    smtp = {"host": "127.0.0.1", "port": port, "ca file": ca_file}
    rules = [
        {
            "on": "cycle complete",
            "email": {
                "to": ["ops@example.org"],
                "from": "nowcast@example.org",
                "smtp": {**smtp, "login file": str(login)},
            },
        },
        {
            "on": "cycle complete",
            "email": {"to": "ops@example.org", "smtp": {"host": "127.0.0.1", "port": port}},
        },
    ]
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    actions = EventActions(rules_of(config_with(rules, tmp_path)), db)
    actions.publish(
        Event("cycle complete", time.time(), None, "c1", {"summary": "cycle c1 complete"})
    )
    actions.close(wait=15)
    ((to, content, authenticated),) = mails
    assert to == ["ops@example.org"] and authenticated
    assert "Subject: nowcast cycle complete: cycle c1 complete" in content
    assert "From: nowcast@example.org" in content
    sent, untrusted = notifications(db)
    assert sent[:2] == ("email", "sent")
    assert untrusted[1] == "failed" and "CERTIFICATE_VERIFY_FAILED" in untrusted[5]


@pytest.mark.timeout(30)
def test_a_rejected_smtp_login_is_recorded_as_failed_with_the_servers_answer(
    tmp_path, smtp_receiver
):
    port, ca_file, mails = smtp_receiver
    login = tmp_path / "smtp-login"
    login.write_text("nowcast\nwrong-password\n")
    os.chmod(login, 0o600)
    rules = [
        {
            "on": "cycle complete",
            "email": {
                "to": "ops@example.org",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "ca file": ca_file,
                    "login file": str(login),
                },
            },
        }
    ]
    db = str(tmp_path / "h.sqlite")
    history.open_for_writing(db).close()
    actions = EventActions(rules_of(config_with(rules, tmp_path)), db)
    actions.publish(Event("cycle complete", time.time(), None, "c1", {"summary": "done"}))
    actions.close(wait=15)
    assert mails == []
    ((kind, outcome, *rest),) = notifications(db)
    assert (kind, outcome) == ("email", "failed")
    assert "535" in rest[-1], rest
