"""The manager, with real broker, manager and worker processes."""

from __future__ import annotations

import json
import os
import random
import signal

import pytest
import yaml
import zmq
from conftest import free_port, listening, wait_for
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture
def known(system):
    """A started system with one registered worker, `known`, whose after_ launches nothing."""
    system.worker_module("known")
    system.after("def after_known(msg, config, checklist):\n    return []\n")
    return system.start()


@pytest.mark.timeout(60)
def test_five_worker_chain(system):
    names = [f"w{i}" for i in range(1, 6)]
    for name in names:
        system.worker_module(name, f"return {{'{name}': 'done'}}")
    for this, following in zip(names, names[1:] + [None], strict=True):
        launch = f"[NextWorker({following!r})]" if following else "[]"
        system.after(f"def after_{this}(msg, config, checklist):\n    return {launch}\n")
    system.start()
    result = system.run_worker("w1")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: "w5" in system.checklist(), what="w5 in the checklist")
    checklist = system.checklist()
    assert [checklist[n] for n in names] == [{n: "done"} for n in names]
    assert list(checklist) == names


@pytest.mark.timeout(60)
def test_race_condition_group_launches_what_follows_once(system):
    system.worker_module("a")
    system.worker_module("b")
    system.worker_module("c", "import time; time.sleep(0.5); return {'c': 1}")
    system.worker_module("d", "open('d.marker', 'a').write('d\\n'); return {'d': 1}")
    system.after(
        """
        def after_a(msg, config, checklist):
            return [NextWorker("b"), NextWorker("c")], {"b", "c"}
        def after_b(msg, config, checklist):
            return [NextWorker("d")]
        def after_c(msg, config, checklist):
            return [NextWorker("d")]
        def after_d(msg, config, checklist):
            return []
        """
    )
    system.start()
    assert system.run_worker("a").returncode == 0
    wait_for(lambda: "d" in system.checklist(), what="d to report")
    assert (system.dir / "d.marker").read_text() == "d\n"
    log = system.log()
    # d was held until both b and c had reported
    assert log.index("checklist updated with [c]") < log.index("launching NextWorker(module='d'")
    assert log.count("launching NextWorker(module='d'") == 1


@pytest.mark.timeout(60)
def test_need_returns_a_checklist_entry(system):
    system.worker_module("producer", "return {'file': 'forcing.nc'}")
    system.worker_module(
        "consumer",
        """
        reply = tell_manager("need", "producer")
        return {"got": reply.payload}
        """,
        need="consumer needs a checklist entry",
    )
    system.after(
        "def after_producer(msg, config, checklist):\n    return []\n"
        "def after_consumer(msg, config, checklist):\n    return []\n"
    )
    system.start()
    assert system.run_worker("producer").returncode == 0
    result = system.run_worker("consumer")
    assert result.returncode == 0, result.stderr
    assert system.checklist()["consumer"] == {"got": {"file": "forcing.nc"}}


@pytest.mark.timeout(60)
def test_need_of_an_unknown_key_is_refused(system):
    system.worker_module(
        "consumer", "tell_manager('need', 'nothing here')\nreturn {}", need="needs"
    )
    system.after("def after_consumer(msg, config, checklist):\n    return []\n")
    system.start()
    result = system.run_worker("consumer")
    assert result.returncode == 5
    assert "unknown checklist key" in result.stderr


@pytest.mark.timeout(60)
def test_need_of_an_entry_too_big_for_a_reply_is_refused_saying_so(system):
    system.zmq_extra["max message size"] = 2000
    for name, key in (("big_consumer", "big"), ("small_consumer", "small")):
        system.worker_module(
            name,
            f"reply = tell_manager('need', {key!r})\nreturn {{'got': reply.payload}}",
            need="n",
        )
        system.after(f"def after_{name}(msg, config, checklist):\n    return []\n")
    system.checklist_file.write_text(yaml.safe_dump({"big": "x" * 5000, "small": "y"}))
    system.start()
    result = system.run_worker("big_consumer")
    # an answer, at once, not a reply the broker drops and a worker that waits for it
    assert result.returncode == 5, result.stderr
    assert "reply too big" in result.stderr
    assert "over zmq: max message size (2,000 bytes)" in result.stderr
    assert "big_consumer asked for the value of checklist key 'big'" in system.log()
    # the manager's connection to the broker is whole: the next need is answered
    result = system.run_worker("small_consumer")
    assert result.returncode == 0, result.stderr
    assert system.checklist()["small_consumer"] == {"got": "y"}


@pytest.mark.timeout(60)
def test_clear_checklist_writes_the_checklist_log_first(system):
    system.worker_module("producer", "return {'value': 42}")
    system.register("clear_checklist", **{"clear checklist": "please clear"})
    system.after(
        "def after_producer(msg, config, checklist):\n    return []\n"
        "def after_clear_checklist(msg, config, checklist):\n    return []\n"
    )
    system.start(manager=False)
    config = system.config()
    config["logging"]["handlers"]["checklist"] = {
        "class": "logging.FileHandler",
        "filename": str(system.dir / "checklist.log"),
        "formatter": "simple",
    }
    config["logging"]["loggers"] = {"checklist": {"handlers": ["checklist"], "propagate": False}}
    system.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    system.start_manager()
    assert system.run_worker("producer").returncode == 0
    result = system.run_worker("nowcast.workers.clear_checklist")
    assert result.returncode == 0, result.stderr
    assert "producer" not in system.checklist()
    assert "value: 42" in (system.dir / "checklist.log").read_text()
    assert "checklist cleared" in system.log()


@pytest.mark.timeout(60)
def test_after_function_that_raises_is_answered_and_manager_carries_on(system):
    system.worker_module("bad")
    system.worker_module("good")
    system.after(
        "def after_bad(msg, config, checklist):\n    raise ValueError('oops in user code')\n"
        "def after_good(msg, config, checklist):\n    return []\n"
    )
    system.start()
    result = system.run_worker("bad")
    assert result.returncode == 5
    assert "after_worker function failed" in result.stderr
    log = system.log()
    assert "Traceback" in log and "ValueError: oops in user code" in log
    assert system.run_worker("good").returncode == 0
    assert "bad" not in system.checklist()  # refused, so not applied
    assert system.manager.poll() is None


@pytest.mark.timeout(60)
def test_registry_replies(system):
    system.worker_module("known")
    system.start()
    assert (
        system.request({"source": "stranger", "type": "success"})["type"] == "unregistered worker"
    )
    assert (
        system.request({"source": "known", "type": "party"})["type"] == "unregistered message type"
    )
    assert system.request({"source": "known", "type": "checklist key"})["type"] == (
        "unregistered message type"
    )
    assert system.request({"source": "known", "type": "success"})["type"] == (
        "no after_worker function"
    )


def _malformed(rng: random.Random) -> list[tuple[bytes, str]]:
    """500 messages, each with the reply it must get."""
    deep = "[" * 100_000 + "]" * 100_000
    shapes = [
        (b"", "invalid message"),
        (b"\xff\xfe\x00garbage", "invalid message"),
        (b"{not json", "invalid message"),
        (b"{'source': [unclosed", "invalid message"),
        (b"- just\n- a list\n", "invalid message"),
        (b"42", "invalid message"),
        (b"null", "invalid message"),
        (json.dumps({"source": 1, "type": "success"}).encode(), "invalid message"),
        (json.dumps({"source": "known"}).encode(), "invalid message"),
        (
            json.dumps({"source": "known", "type": "success", "extra": 1}).encode(),
            "invalid message",
        ),
        (json.dumps({"source": "known", "type": "success", "id": 5}).encode(), "invalid message"),
        (deep.encode(), "invalid message"),
        (b"a: &a [1]\nb: &b [*a, *a]\nc: [*b, *b]\n", "invalid message"),
        (
            b"source: known\ntype: success\npayload: !!python/object/apply:os.system ['true']\n",
            "invalid message",
        ),
        (
            json.dumps({"source": "known", "type": "success", "payload": "x" * 500_000}).encode(),
            "ack",
        ),
        (json.dumps({"source": "stranger", "type": "success"}).encode(), "unregistered worker"),
        (json.dumps({"source": "known", "type": "party"}).encode(), "unregistered message type"),
    ]
    out = list(shapes)
    while len(out) < 500:
        out.append(
            (bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), "invalid message")
        )
    return out


def _ask(context: zmq.Context, port: int, body: bytes) -> str | None:
    """Send ``body`` on a REQ socket of its own; the reply's type, or None. A socket per
    request, so a reply can only be the answer to this request."""
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{port}")
    try:
        req.send(body)
        if not req.poll(30_000):  # the deeply nested one takes seconds to refuse
            return None
        return json.loads(req.recv())["type"]
    finally:
        req.close()


@pytest.mark.timeout(120)
def test_500_malformed_messages_then_a_valid_worker_reports(known):
    system = known
    rng = random.Random(20261124)
    context = zmq.Context.instance()
    messages = _malformed(rng)
    port = system.ports["workers"]
    # each request is answered with its own reply, valid ones between the bad ones too
    valid = json.dumps({"source": "known", "type": "success", "payload": {"v": 1}})
    for i, (body, expected) in enumerate(messages[:400]):
        assert (i, _ask(context, port, body)) == (i, expected)
        if i % 10 == 9:
            assert _ask(context, port, valid.encode()) == "ack"
    # DEALER clients: missing delimiters, extra frames
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    for i, (body, _) in enumerate(messages[400:]):
        frames = (
            [body] if i % 3 == 0 else [b"", body, b"extra"] if i % 3 == 1 else [b"x", b"", body]
        )
        dealer.send_multipart(frames)
    dealer.close()
    result = system.run_worker("known")
    assert result.returncode == 0, result.stderr
    assert system.manager.poll() is None
    assert system.broker.poll() is None
    assert system.checklist()["known"] == {"v": 1, "done": True}


@pytest.mark.timeout(180)
def test_manager_killed_twice_while_100_workers_report_loses_nothing(system):
    system.zmq_extra.update({"reply timeout": 1, "give up after": 60})
    system.worker_module("reporter", "return {f'item-{parsed_args.arg}': int(parsed_args.arg)}")
    system.after("def after_reporter(msg, config, checklist):\n    return []\n")
    system.start()
    workers = [system.launch_worker("reporter", "--arg", str(i)) for i in range(100)]
    for kill in range(2):
        wait_for(
            lambda n=kill: len(system.checklist().get("reporter", {})) > 15 * (n + 1),
            timeout=60,
            what="some reports",
        )
        system.kill_manager()
        # the checklist file is valid YAML right after the kill
        assert isinstance(yaml.safe_load(system.checklist_file.read_text()), dict)
        system.start_manager()
    codes = [w.wait(90) for w in workers]
    assert codes == [0] * 100
    items = system.checklist()["reporter"]
    assert items == {f"item-{i}": i for i in range(100)}


@pytest.mark.timeout(60)
def test_a_resent_message_is_answered_not_applied_twice(system):
    system.worker_module("counted")
    system.after(
        "def after_counted(msg, config, checklist):\n"
        "    open('after.count', 'a').write('x')\n"
        "    return []\n"
    )
    system.start()
    message = {"source": "counted", "type": "success", "payload": {"n": 1}, "id": "counted:1:ab:1"}
    first = system.request(message)
    second = system.request(message)
    assert first == second and first["type"] == "ack"
    system.kill_manager()
    system.start_manager()
    assert system.request(message) == first
    assert (system.dir / "after.count").read_text() == "x"


@pytest.mark.timeout(60)
def test_sighup_with_broken_config_is_refused_and_manager_keeps_serving(known):
    system = known
    good = system.config_file.read_text()
    system.config_file.write_text(good.replace("next workers module: next_workers", "x: 1"))
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in system.log(), what="refusal")
    assert "next workers module" in system.log().split("config reload refused")[1].splitlines()[0]
    assert system.run_worker("known").returncode == 0


@pytest.mark.timeout(60)
def test_sigterm_stops_manager_and_broker_within_2_seconds(system):
    system.start()
    for process in (system.manager, system.broker):
        process.send_signal(signal.SIGTERM)
        assert process.wait(2) == 0
    assert "SIGTERM received; shutting down" in system.log()


def edit_next_workers(system, text: str) -> None:
    """Append ``text`` to the next workers module, its time stamp surely newer."""
    source = system.dir / "next_workers.py"
    source.write_text(source.read_text() + text)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.timeout(60)
def test_next_workers_module_is_reimported_when_its_file_changes(known):
    system = known
    assert system.run_worker("known").returncode == 0
    assert system.run_worker("known").returncode == 0
    assert "re-imported" not in system.log()
    edit_next_workers(
        system,
        "\ndef after_known(msg, config, checklist):\n"
        "    open('edited.marker', 'a').write(msg.type + '\\n')\n"
        "    return []\n",
    )
    assert not (system.dir / "edited.marker").exists()
    assert system.run_worker("known").returncode == 0
    assert (system.dir / "edited.marker").read_text() == "success\n"  # the new after_known ran
    assert system.log().count("next workers module re-imported") == 1


@pytest.mark.timeout(60)
def test_a_next_workers_module_put_back_with_an_older_time_stamp_is_reimported(known):
    # as `cp -p` or `rsync -t` of an earlier copy leaves it: a change, not newer
    system = known
    assert system.run_worker("known").returncode == 0
    source = system.dir / "next_workers.py"
    source.write_text(
        source.read_text() + "\ndef after_known(msg, config, checklist):\n"
        "    open('edited.marker', 'a').write(msg.type + '\\n')\n"
        "    return []\n"
    )
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns - 3600 * 10**9))
    assert system.run_worker("known").returncode == 0
    assert (system.dir / "edited.marker").read_text() == "success\n"


@pytest.mark.timeout(60)
def test_checklist_is_reloaded_at_start_unless_ignored(known):
    system = known
    assert system.run_worker("known").returncode == 0
    system.manager.terminate()
    system.manager.wait(5)
    system.start_manager()
    status = system.request({"source": "nowcast.status", "type": "status"})
    assert status["payload"]["checklist keys"] == ["known"]
    system.manager.terminate()
    system.manager.wait(5)
    system.start_manager("--ignore-checklist")
    status = system.request({"source": "nowcast.status", "type": "status"})
    assert status["payload"]["checklist keys"] == []


@pytest.mark.timeout(60)
def test_a_next_workers_module_with_a_syntax_error_is_refused_and_the_old_one_kept(known):
    system = known
    edit_next_workers(system, "\ndef broken(:\n")
    assert system.run_worker("known").returncode == 0
    log = system.log()
    assert "next workers module changed but cannot be re-imported" in log
    assert "SyntaxError" in log


@pytest.mark.timeout(60)
def test_no_ack_while_the_checklist_cannot_be_written_then_it_is_written_and_acked(known):
    system = known
    # a directory where the manager writes its temporary checklist file makes writing fail
    blocker = system.dir / f".{system.checklist_file.name}.{system.manager.pid}.tmp"
    blocker.mkdir()
    worker = system.launch_worker("known")
    wait_for(lambda: "cannot write the checklist" in system.log(), what="the failed write")
    wait_for(lambda: "re-sending" in system.log(), what="the worker to re-send")
    assert worker.poll() is None, "acknowledged before the checklist was on disk"
    assert "known" not in system.checklist()
    blocker.rmdir()
    assert worker.wait(30) == 0
    assert system.checklist()["known"] == {"done": True}
    assert system.manager.poll() is None
    log = system.log()
    assert log.count("cannot write the checklist") == 1  # not once a second
    assert "Is a directory" in log and "written to disk again, after" in log
    # the writes that follow are ordinary ones: no second "written again", and a
    # failure after them is logged at once, as the first of its run
    assert system.run_worker("known").returncode == 0
    blocker.mkdir()
    worker = system.launch_worker("known")
    wait_for(lambda: system.log().count("cannot write the checklist") == 2, what="the next failure")
    blocker.rmdir()
    assert worker.wait(30) == 0
    log = system.log()
    assert log.count("written to disk again") == 2


@pytest.mark.timeout(60)
def test_every_message_gets_exactly_one_reply(known):
    """Replies that need no commit (invalid messages, answers given before) go
    out once, not again with every later batch."""
    system = known
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://127.0.0.1:{system.ports['workers']}")
    applied = {"source": "known", "type": "success", "payload": {}, "id": "known:1:aa:1"}
    sent = [b"{not json", json.dumps(applied).encode(), b"[1, 2"]
    sent += [json.dumps(applied).encode(), b"42"] * 5  # answers given before, invalid
    replies = []
    try:
        for body in sent:
            dealer.send_multipart([b"", body])
            assert dealer.poll(5000), "no reply"
            replies.append(dealer.recv_multipart())
        while dealer.poll(500):  # anything more is a duplicate
            replies.append(dealer.recv_multipart())
    finally:
        dealer.close()
    types = [json.loads(r[-1])["type"] for r in replies]
    assert types == ["invalid message", "ack", "invalid message"] + ["ack", "invalid message"] * 5


@pytest.mark.timeout(60)
def test_messages_of_several_frames_sent_together_are_read_each_whole(known):
    """The manager reads a batch of messages frame by frame: each message is
    answered for what it is, however many frames the ones around it have."""
    system = known
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://127.0.0.1:{system.ports['workers']}")

    def body(n: int) -> bytes:
        return json.dumps(
            {"source": "known", "type": "success", "payload": {f"n{n}": n}, "id": f"k:1:ab:{n}"}
        ).encode()

    sent = [[b"", body(0)], [b"", body(1), b"extra", b"more"], [b"", body(2)], [b"", body(3), b""]]
    replies = []
    try:
        for frames in sent:  # all at once: most arrive in one batch
            dealer.send_multipart(frames)
        while len(replies) < len(sent) and dealer.poll(5000):
            replies.append(dealer.recv_multipart())
    finally:
        dealer.close()
    assert [r[0] for r in replies] == [b""] * 4
    got = sorted((json.loads(r[1])["type"], json.loads(r[1])["payload"]) for r in replies)
    assert got == [
        ("ack", None),
        ("ack", None),
        ("invalid message", "expected one frame of text, got 2 frames"),
        ("invalid message", "expected one frame of text, got 3 frames"),
    ]
    assert system.checklist()["known"] == {"n0": 0, "n2": 2}


@pytest.mark.timeout(60)
def test_a_message_that_cannot_be_written_is_refused_and_later_acks_reach_the_disk(known):
    system = known
    poison = [
        '{"source": "known", "type": "success", "payload": {"x": "\\ud800"}}',
        '{"source": "known", "type": "success", "id": "known:1:\\udc80:1"}',
        '{"source": "known", "type": "success", "payload": ' + "[" * 300 + "]" * 300 + "}",
    ]
    for text in poison:
        assert system.request(text)["type"] == "invalid message"
    assert system.run_worker("known").returncode == 0
    system.kill_manager()
    assert system.checklist()["known"] == {"done": True}
    system.start_manager()
    assert system.manager.poll() is None


@pytest.mark.timeout(60)
def test_a_second_manager_on_the_same_checklist_refuses_to_start(known):
    system = known
    second = system.spawn("nowcast.manager")
    assert second.wait(20) == 2
    out = (system.dir / "nowcast.manager.out").read_text()
    refusal = [line for line in out.splitlines() if "cannot run" in line]
    assert len(refusal) == 1
    assert f"another manager (pid {system.manager.pid})" in refusal[0]
    assert "manager-lock" in refusal[0]
    for _ in range(3):  # every message goes to the first one, and is on disk
        assert system.run_worker("known").returncode == 0
    system.kill_manager()  # the kernel lets the lock go
    system.start_manager()
    assert system.manager.poll() is None


@pytest.mark.timeout(300)
def test_ids_are_remembered_by_time_not_count(system):
    """A burst of more messages than any fixed count, then a re-send of the first:
    answered from memory, not applied again (also after a restart)."""
    system.worker_module("counted")
    system.after(
        "def after_counted(msg, config, checklist):\n"
        "    if msg.payload.get('n') == 0:\n"
        "        open('first.count', 'a').write('x')\n"
        "    return []\n"
    )
    system.start()
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://127.0.0.1:{system.ports['workers']}")

    def message(n):
        body = {"source": "counted", "type": "success", "payload": {"n": n}, "id": f"c:1:ab:{n}"}
        return [b"", json.dumps(body).encode()]

    try:
        count, chunk = 2500, 100  # chunks: the broker drops what overflows its queue
        replies = []
        for start in range(0, count, chunk):
            for n in range(start, start + chunk):
                dealer.send_multipart(message(n))
            while len(replies) < start + chunk and dealer.poll(60000):
                replies.append(json.loads(dealer.recv_multipart()[-1]))
        assert len(replies) == count and {r["type"] for r in replies} == {"ack"}
        dealer.send_multipart(message(0))
        assert dealer.poll(10000)
        assert json.loads(dealer.recv_multipart()[-1])["id"] == "c:1:ab:0"
        system.kill_manager()
        system.start_manager()
        dealer.send_multipart(message(0))
        assert dealer.poll(10000)
        assert json.loads(dealer.recv_multipart()[-1])["id"] == "c:1:ab:0"
    finally:
        dealer.close()
    assert (system.dir / "first.count").read_text() == "x"


@pytest.mark.timeout(60)
def test_sighup_with_a_next_workers_module_that_cannot_be_imported_keeps_the_old_config(known):
    system = known
    good = system.config_file.read_text()
    system.config_file.write_text(good.replace("next_workers", "no_such_next_workers"))
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in system.log(), what="refusal")
    refusal = system.log().split("config reload refused")[1].splitlines()[0]
    assert "no_such_next_workers" in refusal and "ModuleNotFoundError" in refusal
    assert system.run_worker("known").returncode == 0  # the old module still answers


@pytest.mark.timeout(60)
def test_an_edit_that_raises_at_import_leaves_the_old_module_whole(known):
    system = known
    system.worker_module("newcomer")
    system.write()  # the registry knows newcomer from the next reload
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in system.log(), what="reload")
    edit_next_workers(
        system,
        "\ndef after_newcomer(msg, config, checklist):\n    return []\n"
        "raise RuntimeError('half-edited')\n",
    )
    result = system.run_worker("newcomer")
    assert result.returncode == 5 and "no after_worker function" in result.stderr
    assert "RuntimeError: half-edited" in system.log()
    assert system.run_worker("known").returncode == 0


@pytest.mark.timeout(60)
def test_a_function_removed_by_an_edit_is_gone(known):
    system = known
    source = system.dir / "next_workers.py"
    source.write_text(source.read_text().replace("def after_known", "def after_renamed"))
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    result = system.run_worker("known")
    assert result.returncode == 5 and "no after_worker function" in result.stderr


@pytest.mark.timeout(60)
def test_sighup_with_a_new_manager_port_connects_to_it(known):
    system = known
    system.zmq_extra.update({"reply timeout": 1, "give up after": 5})
    # a port that sorts before the old one as text, then one that sorts after
    for earlier in (True, False):
        old = system.ports["manager"]
        new = free_port()
        for _ in range(100):
            if (str(new) < str(old)) == earlier:
                break
            new = free_port()
        system.ports["manager"] = new
        system.write()
        for process in (system.broker, system.manager):
            before = system.log().count("config reloaded")
            process.send_signal(signal.SIGHUP)
            wait_for(lambda n=before: system.log().count("config reloaded") > n, what="the reload")
        wait_for(
            lambda port=new: ("127.0.0.1", port) in listening(system.broker.pid),
            what="the new bind",
        )
        assert system.run_worker("known").returncode == 0


def refused_at_start(system) -> str:
    """Start the manager alone on ``system``'s config; return its output once it
    exits with the code of a config it cannot start with (2)."""
    system.write()
    manager = system.spawn("nowcast.manager")
    assert manager.wait(20) == 2
    return (system.dir / "nowcast.manager.out").read_text()


@pytest.mark.timeout(60)
def test_a_python_key_that_names_no_executable_is_refused_at_start(system):
    system.config_extra["python"] = str(system.dir / "no-such-python")
    out = refused_at_start(system)
    assert "key 'python' must be an executable Python interpreter" in out


@pytest.mark.timeout(60)
def test_an_error_inside_the_next_workers_module_is_refused_with_its_traceback(system):
    # a module the next workers module imports is missing: not the same as the
    # next workers module itself missing, so its traceback is logged
    system.next_workers = "import nowcast_no_such_module_here\n"
    out = refused_at_start(system)
    assert "cannot import next workers module next_workers" in out
    assert "Traceback" in out and "nowcast_no_such_module_here" in out
    assert "cannot import 'next_workers': ModuleNotFoundError" in out
    # an error of another kind, raised while it is imported
    (system.dir / "nowcast.manager.out").unlink()
    system.next_workers = "raise RuntimeError('no rivers today')\n"
    out = refused_at_start(system)
    assert "cannot import 'next_workers': RuntimeError: no rivers today" in out
    assert "Traceback" in out


@pytest.mark.timeout(60)
def test_a_next_workers_module_that_does_not_exist_is_refused_without_a_traceback(system):
    # a mistake in the config: the error names the key and the module, nothing more
    system.write()
    (system.dir / "next_workers.py").unlink()
    manager = system.spawn("nowcast.manager")
    assert manager.wait(20) == 2
    out = (system.dir / "nowcast.manager.out").read_text()
    assert "key 'message registry: next workers module': cannot import 'next_workers'" in out
    assert "Traceback" not in out + system.log()


@pytest.mark.timeout(60)
def test_a_reload_takes_the_batch_hosts_settings(system):
    jobs = system.dir / "jobs"

    def cluster(comment: str) -> dict:
        options = [f"--comment={comment}"]
        return {
            "enabled hosts": {
                "cluster": {
                    "batch": "slurm",
                    "jobs directory": str(jobs),
                    "sbatch options": options,
                }
            }
        }

    system.worker_module("start")
    system.worker_module("middle")
    system.after(
        "def after_start(msg, config, checklist):\n"
        "    return [NextWorker('middle', host='cluster')]\n"
        "def after_middle(msg, config, checklist):\n    return []\n"
    )
    system.config_extra["run"] = cluster("before-reload")
    system.start()
    system.config_extra["run"] = cluster("after-reload")
    system.config_file.write_text(yaml.safe_dump(system.config(), sort_keys=False))
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in system.log(), what="the reload")
    assert system.run_worker("start").returncode == 0
    # the job script is written before it is submitted (whether or not SLURM takes it)
    script = wait_for(lambda: list(jobs.glob("middle-*.sh")), what="a job script")[0]
    assert "--comment=after-reload" in script.read_text()


@pytest.mark.timeout(60)
def test_the_next_workers_module_validated_is_the_one_used_not_imported_again(known):
    # each import of the module appends a line: the one imported to validate the
    # config, at start and at a reload, is the one the manager then uses
    system = known
    system.manager.terminate()
    system.manager.wait(5)
    system.next_workers += "open('imports.log', 'a').write('imported\\n')\n"
    system.write()
    system.start_manager()
    imports = system.dir / "imports.log"
    assert imports.read_text() == "imported\n"
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in system.log(), what="the reload")
    assert imports.read_text() == "imported\n" * 2


def test_after_a_wait_in_vain_the_next_commits_do_not_wait():
    """A burst's commit waits for the workers just answered to send again; when
    they do not (workers that send one message and exit), the next
    GROUP_COMMIT_SKIP commits do not wait (docs/architecture.md)."""
    from types import SimpleNamespace

    from nowcast import defaults
    from nowcast.manager import NowcastManager

    manager = NowcastManager()
    manager.core = SimpleNamespace(
        unsent=[], state=SimpleNamespace(pending=[]), committed=lambda room: ([], [])
    )
    manager._launch_journal = SimpleNamespace(written=0)
    manager._launch_room = lambda now: 0
    manager._send = manager._launch = lambda what: None
    manager._gather_until, manager._gather_count = 1.0, 3
    manager.core.unsent = ["one of the three"]
    manager._gather_ended()  # came back: one of three
    assert manager._gather_skip == defaults.GROUP_COMMIT_SKIP and manager._gather_until == 0.0
    for _ in range(defaults.GROUP_COMMIT_SKIP - 1):
        manager._committed()
    assert manager._gather_skip == 1
    manager._committed()
    assert manager._gather_skip == 0
    manager._gather_until, manager._gather_count = 1.0, 3
    manager.core.unsent = ["a", "b", "c"]
    manager._gather_ended()  # all came back: the next burst waits again
    assert manager._gather_skip == 0 and manager._gather_until == 0.0


def test_a_commit_waits_on_while_the_workers_answered_come_back_up_to_a_limit():
    """In-process: each message that comes while a burst's commit waits makes it
    wait GROUP_COMMIT_WAIT more, never beyond GROUP_COMMIT_MAX_WAIT in all; a
    message answered at once (nothing applied) does not."""
    import time
    from types import SimpleNamespace

    from nowcast import defaults
    from nowcast.manager import NowcastManager

    manager = NowcastManager()
    replies = ["reply"] * defaults.GROUP_COMMIT_MIN
    manager.core = SimpleNamespace(
        unsent=[],
        state=SimpleNamespace(pending=[]),
        committed=lambda room: (replies, []),
        receive=lambda frames, now: manager.core.unsent.append("held") if frames else "at once",
        sendable=lambda writing: [],
    )
    manager._launch_journal = SimpleNamespace(written=0)
    manager._send = manager._launch = lambda what: None
    manager._reimport_next_workers_if_changed = lambda: None
    manager._committer = SimpleNamespace(busy=False)
    manager._committed()
    first, limit = manager._gather_until, manager._gather_limit
    assert time.monotonic() < first < limit <= time.monotonic() + defaults.GROUP_COMMIT_MAX_WAIT
    manager.handle_batch([[]])  # answered at once: nothing more to wait for
    assert manager._gather_until == first
    time.sleep(0.001)
    manager.handle_batch([[b"frames"]])
    assert first < manager._gather_until <= limit
    time.sleep(defaults.GROUP_COMMIT_MAX_WAIT)
    manager.handle_batch([[b"frames"]])
    assert manager._gather_until == limit < time.monotonic()


def test_a_burst_of_four_replies_makes_the_next_commit_wait_and_the_launch_window_holds():
    """In-process: a commit that answered GROUP_COMMIT_MIN messages makes the next
    wait for more; no more than LAUNCH_WINDOW workers are starting at once."""
    import time
    from types import SimpleNamespace

    from nowcast import defaults
    from nowcast.manager import NowcastManager

    manager = NowcastManager()
    replies = ["reply"] * defaults.GROUP_COMMIT_MIN
    manager.core = SimpleNamespace(
        unsent=[], state=SimpleNamespace(pending=[]), committed=lambda room: (replies, [])
    )
    manager._launch_journal = SimpleNamespace(written=0)
    manager._send = manager._launch = lambda what: None
    manager.core.unsent = ["applied while it was written"]
    manager._committed()
    assert manager._gather_until > time.monotonic()
    # it waits for the workers just answered and for those applied meanwhile
    assert manager._gather_count == defaults.GROUP_COMMIT_MIN + 1

    running = SimpleNamespace(poll=lambda: None)  # a launched worker still starting
    now = time.time()
    manager.core.state.pending = ["waiting"] * defaults.LAUNCH_WINDOW
    manager._starting = [(now - 0.1, running)] * defaults.LAUNCH_WINDOW
    assert manager._launch_room(now) == 0
    manager._starting = [(now - defaults.STARTING_SECONDS - 0.1, running)] * defaults.LAUNCH_WINDOW
    assert manager._launch_room(now) == defaults.LAUNCH_WINDOW  # started long enough ago
    # room for fewer than a quarter of the window: none until a quarter is free
    quarter = defaults.LAUNCH_WINDOW // 4
    manager._starting = [(now - 0.1, running)] * (defaults.LAUNCH_WINDOW - quarter + 1)
    assert manager._launch_room(now) == 0
    manager._starting.pop()
    assert manager._launch_room(now) == quarter


@pytest.mark.timeout(60)
def test_the_manager_stops_in_time_with_a_reply_queued_for_a_broker_that_is_gone(known):
    system = known
    blocker = system.dir / f".{system.checklist_file.name}.{system.manager.pid}.tmp"
    blocker.mkdir()  # the write fails, so the reply is held
    worker = system.launch_worker("known")
    wait_for(lambda: "cannot write the checklist" in system.log(), what="the failed write")
    system.broker.send_signal(signal.SIGKILL)
    system.broker.wait(5)
    worker.send_signal(signal.SIGKILL)
    blocker.rmdir()  # the next write works: its reply goes to a broker that is gone
    wait_for(lambda: "written to disk again" in system.log(), what="the write")
    system.manager.send_signal(signal.SIGTERM)
    assert system.manager.wait(5) == 0


@pytest.mark.timeout(60)
def test_ssh_options_that_are_not_a_list_are_refused_at_start(system):
    system.config_extra["run"] = {"enabled hosts": {"hpc": {"ssh options": "-v"}}}
    out = refused_at_start(system)
    assert "key 'run: enabled hosts: hpc: ssh options' must be a list" in out


@pytest.mark.timeout(60)
def test_a_crash_is_seen_while_messages_keep_coming(system):
    # messages about every 100 ms (more than the supervision period, less than an
    # idle poll) must not keep the manager from looking at its workers
    import threading
    import time

    system.config_extra["run"] = {"warm start": False}  # no fork server to wake it
    system.worker_module("start")
    system.worker_module("crasher", "os._exit(3)")
    system.after(
        "def after_start(msg, config, checklist):\n    return [NextWorker('crasher')]\n"
        "def after_crasher(msg, config, checklist):\n    return []\n"
    )
    system.start()
    done = threading.Event()

    def keep_asking() -> None:
        while not done.is_set():
            system.request({"source": "nowcast.status", "type": "status"})
            time.sleep(0.1)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        assert system.run_worker("start").returncode == 0
        wait_for(lambda: "handling it as a crash" in system.log(), timeout=5, what="the crash")
    finally:
        done.set()
        asker.join()


@pytest.mark.timeout(60)
def test_the_launch_journal_is_emptied_once_the_state_file_holds_its_launches(system):
    system.worker_module("start")
    system.worker_module("second")
    system.after(
        "def after_start(msg, config, checklist):\n    return [NextWorker('second')]\n"
        "def after_second(msg, config, checklist):\n    return []\n"
    )
    system.start()
    journal = system.dir / f"{system.checklist_file.name}.manager-launches"
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "second" in system.checklist(), what="the second worker")
    # the second worker's message made a commit after the launch was noted
    wait_for(lambda: journal.stat().st_size == 0, what="an empty launch journal")


@given(
    seconds=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
    most=st.integers(min_value=0, max_value=10**6),
)
def test_the_poll_wakes_the_loop_when_a_wait_ends_not_before_and_never_waits_for_ever(
    seconds, most
):
    from nowcast.manager import poll_ms

    timeout = poll_ms(seconds, most)
    assert 0 <= timeout <= most  # -1 would wait for an event, however long
    if timeout < most:
        # not before the wait ends (the loop would spin), at most 1 ms after
        assert max(seconds, 0) * 1000 <= timeout <= max(seconds, 0) * 1000 + 1


def test_a_worker_started_cold_is_in_the_launch_journal_before_anything_else(tmp_path, monkeypatch):
    """In-process: a launch the manager made itself goes into the launch journal
    at once (a fork server's launches are there already, noted before they ran),
    so a manager killed before the commit that records it knows of it at its
    next start, even once the worker has exited."""
    from types import SimpleNamespace

    from nowcast import launcher
    from nowcast.launches import LaunchJournal
    from nowcast.manager import NowcastManager
    from nowcast.next_worker import NextWorker

    cold = SimpleNamespace(pid=os.getpid())
    forked = SimpleNamespace(pid=os.getppid(), noted=True)
    monkeypatch.setattr(launcher, "launch_many", lambda *args: [cold, forked, OSError("no")])
    manager = NowcastManager()
    manager.config = manager.logger = manager.warm = None
    manager.batch = SimpleNamespace(handles=lambda host: False)
    launched = []
    manager.core = SimpleNamespace(
        launched=lambda worker, process, tries, token, now: launched.append(token),
        history=SimpleNamespace(not_launched=lambda worker: None),
    )
    manager.logger = SimpleNamespace(error=lambda *args: None)
    manager._launch_journal = LaunchJournal(str(tmp_path / "launches"))
    manager._starting = []
    manager._launch(
        [(NextWorker("a"), 1, "cold"), (NextWorker("b"), 1, "forked"), (NextWorker("c"), 1, "x")]
    )
    journal = manager._launch_journal.read()
    assert list(journal) == ["cold"]
    assert journal["cold"]["pid"] == os.getpid() and journal["cold"]["proc start"]
    assert launched == ["cold", "forked"]


def test_the_workers_a_fork_server_forked_are_in_the_launch_journal_before_they_run(tmp_path):
    """In-process: the manager notes each worker the fork server has forked in the
    launch journal (before it tells the server to let them run); one with no
    token has nothing to find it by and is not noted."""
    from types import SimpleNamespace

    from nowcast.launches import LaunchJournal
    from nowcast.manager import NowcastManager

    manager = NowcastManager()
    manager._launch_journal = LaunchJournal(str(tmp_path / "launches"))
    one, two = SimpleNamespace(pid=os.getpid()), SimpleNamespace(pid=os.getppid())
    manager._note_warm_launches([("t1", one), (None, two)])
    journal = manager._launch_journal.read()
    assert list(journal) == ["t1"]
    assert journal["t1"]["pid"] == os.getpid() and journal["t1"]["proc start"] == one.proc_start


def test_a_failed_write_is_tried_again_after_a_delay_and_logged_again_after_a_minute():
    """In-process: after a failed commit the next try waits COMMIT_RETRY_DELAY
    (not at once, again and again, while a disk stays full); a run of failures is
    logged at its first and then once a minute, with the count of tries."""
    import time
    from types import SimpleNamespace

    from nowcast import defaults
    from nowcast.manager import NowcastManager

    logged = []
    manager = NowcastManager()
    manager.logger = SimpleNamespace(error=lambda text, *args: logged.append(text % args))
    manager._write_failed(OSError("No space left on device"))
    now = time.time()
    assert now < manager._retry_commit_at <= now + defaults.COMMIT_RETRY_DELAY
    assert manager._retry_commit_at > now + defaults.COMMIT_RETRY_DELAY - 0.5
    manager._write_failed(OSError("No space left on device"))  # within the minute
    assert len(logged) == 1 and "No space left on device" in logged[0]
    manager._failure_logged_at -= 61
    manager._write_failed(OSError("No space left on device"))
    assert len(logged) == 2 and "(3 tries so far)" in logged[1]


def test_an_exit_with_a_message_waiting_is_handled_after_the_message():
    """In-process: a worker that exited without its report being applied yet is
    not taken for a crash while a message waits to be read (it may be its
    report); one whose report was applied is handled at once."""
    from types import SimpleNamespace

    from nowcast.manager import NowcastManager

    gone = []
    silent = SimpleNamespace(reported=False)
    manager = NowcastManager()
    manager.warm = None
    manager.batch = SimpleNamespace(tend=lambda now, running: False)
    manager.socket = SimpleNamespace(poll=lambda timeout: True)  # a message waits
    exited = [silent]
    manager.core = SimpleNamespace(
        worker_gone=lambda launched, now: gone.append(launched),
        queue_due_retries=lambda now: None,
        history=SimpleNamespace(tick=lambda now, warm: None, has_rows=False),
        state=SimpleNamespace(
            supervision=SimpleNamespace(
                running=[],
                overdue=lambda now: [],
                groups_to_kill=lambda now: [],
                poll_exits=lambda: exited,
            )
        ),
    )
    manager.supervise(1000.0)
    assert gone == []
    exited = [
        SimpleNamespace(reported=True, stderr_path=None, name="w", pid=1, exit_code=0, started=1)
    ]
    manager.logger = SimpleNamespace(debug=lambda *args: None)
    manager.supervise(1000.0)
    assert gone == exited


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [0, 0.5])
def test_a_max_message_size_that_lets_no_message_through_is_refused_at_start(system, size):
    system.zmq_extra["max message size"] = size
    out = refused_at_start(system)
    assert f"key 'zmq: max message size' must be a number of at least 1, got {size!r}" in out


def test_the_socket_left_at_a_reload_is_dropped_with_what_it_holds():
    """In-process: a reply queued on the old manager socket, for an address the
    broker has left, is dropped (linger 0); kept, it would hold the manager's
    stop (the context's end) for ever."""
    import threading

    from nowcast.manager import NowcastManager

    context = zmq.Context()
    try:
        manager = NowcastManager()
        manager.context = context
        manager.socket = old = context.socket(zmq.DEALER)
        old.connect(f"tcp://127.0.0.1:{free_port()}")  # nobody listens there
        old.send(b"a reply nobody will take")
        manager._connect = lambda: setattr(manager, "socket", context.socket(zmq.DEALER))
        manager._reconnect()
        assert old.closed and manager.socket is not old
        manager.socket.close(linger=0)
    finally:
        # returns at once only if the old socket kept nothing to send
        done = []
        ender = threading.Thread(target=lambda: (context.term(), done.append(1)))
        ender.daemon = True
        ender.start()
        ender.join(5)
        assert done, "the context's end waited for the old socket's queued reply"


def test_the_launch_journal_is_emptied_only_when_the_state_file_holds_every_launch_in_it(
    tmp_path,
):
    """In-process: a commit empties the launch journal only if no launch was noted
    in it after the commit started (the state file it wrote holds those before);
    a launch noted while it was written stays until the next commit."""
    from types import SimpleNamespace

    from nowcast.launches import LaunchJournal
    from nowcast.manager import NowcastManager

    manager = NowcastManager()
    manager.core = SimpleNamespace(
        committed=lambda room: ([], []), state=SimpleNamespace(pending=[])
    )
    manager._launch_room = lambda now: 0
    manager._send = manager._launch = lambda what: None
    journal = manager._launch_journal = LaunchJournal(str(tmp_path / "launches"))
    journal.record("in the commit", os.getpid(), "1", 1.0)
    manager._journal_mark = journal.written  # the commit starts
    journal.record("after it started", os.getpid(), "1", 2.0)
    manager._committed()
    assert list(journal.read()) == ["in the commit", "after it started"]
    manager._journal_mark = journal.written  # the next commit holds both
    manager._committed()
    assert journal.read() == {} and not journal.written


def test_a_commit_is_not_tried_again_before_its_retry_time():
    """In-process: after a failed write, nothing is handed to the committer until
    the retry time, however dirty the core."""
    import time
    from types import SimpleNamespace

    from nowcast.manager import NowcastManager

    started = []
    manager = NowcastManager()
    manager.core = SimpleNamespace(dirty=True, start_commit=lambda path: started.append(path))
    manager._committer = SimpleNamespace(busy=False)
    manager._checklist_path = "checklist.yaml"
    manager._retry_commit_at = time.time() + 60
    manager._start_commit()
    assert started == []
