"""The manager's core, driven directly: messages in, replies, commits and launches out."""

from __future__ import annotations

import json
import logging
import types

import pytest
import yaml

from nowcast.checklist import Checklist
from nowcast.config import Config
from nowcast.core import ManagerCore
from nowcast.message import Message
from nowcast.next_worker import NextWorker
from nowcast.recorder import Recorder
from nowcast.state import ManagerState

ENVELOPE = [b"client", b""]


def make_core(tmp_path, history=None, **after) -> ManagerCore:
    """A core with workers ``a`` and ``b`` registered, and ``after`` as its
    next workers module's functions (``history``: a history database's
    connection to record into)."""
    config = Config()
    config.file = str(tmp_path / "nowcast.yaml")
    entry = {"success": "ok", "failure": "failed", "crash": "crashed"}
    config["checklist file"] = str(tmp_path / "checklist.yaml")
    config["message registry"] = {
        "next workers module": "next_workers",
        "workers": {"a": dict(entry), "b": dict(entry)},
    }
    state = ManagerState.load(config["checklist file"])
    module = types.SimpleNamespace(**after)
    recorder = Recorder(history, config) if history is not None else None
    return ManagerCore(
        config, Checklist(), state, logging.getLogger("test core"), module, history=recorder
    )


def frames(source: str, msg_type: str = "success", payload=None, msg_id=None) -> list[bytes]:
    msg = {"source": source, "type": msg_type, "payload": payload}
    if msg_id is not None:
        msg["id"] = msg_id
    return [*ENVELOPE, json.dumps(msg).encode()]


def reply_types(replies) -> list[str]:
    return [json.loads(r.text)["type"] for r in replies]


def test_a_reply_waits_for_the_commit_that_holds_its_message(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    assert core.receive(frames("a", payload={"x": 1}), 0.0) is None
    assert core.sendable(writing=False) == []  # applied, not yet on disk
    commit = core.start_commit(core.config["checklist file"])
    assert b"x: 1" in dict(commit.replace)[core.config["checklist file"]]
    replies, launches = core.committed()
    assert reply_types(replies) == ["ack"] and launches == []
    assert not core.dirty  # nothing is left for another commit to write


def test_launches_come_after_the_commit_that_records_them(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [NextWorker("b")])
    core.receive(frames("a"), 0.0)
    commit = core.start_commit(core.config["checklist file"])
    state_bytes = dict(commit.replace)[core.state.path]
    assert b'"module": "b"' in state_bytes  # the decision is on disk before the launch
    _, launches = core.committed()
    [(worker, tries, token)] = launches
    assert (worker, tries) == (NextWorker("b"), 1) and token.encode() in state_bytes
    # taken from the pending launches: a later commit says so (the launch journal
    # holds the launch meanwhile), not one of its own at once
    assert core.later and not core.dirty
    commit = core.start_commit(core.config["checklist file"])
    assert token.encode() not in dict(commit.replace)[core.state.path]
    assert not core.later


def test_a_failed_commit_holds_the_replies_for_the_next(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    core.receive(frames("a", msg_id="a:1:x:1"), 0.0)
    core.start_commit(core.config["checklist file"])
    core.commit_failed()
    assert core.dirty and core.sendable(writing=False) == []
    commit = core.start_commit(core.config["checklist file"])
    assert core.config["checklist file"] in dict(commit.replace)
    replies, _ = core.committed()
    assert reply_types(replies) == ["ack"]


@pytest.mark.parametrize(
    "message, expected",
    [
        (frames("stranger"), "unregistered worker"),
        (frames("a", "party"), "unregistered message type"),
        (frames("b"), "no after_worker function"),
        ([*ENVELOPE, b"{not json"], "invalid message"),
    ],
)
def test_registry_replies(tmp_path, message, expected):
    core = make_core(tmp_path)
    core.receive(message, 0.0)
    if core.dirty:
        core.start_commit(core.config["checklist file"])
        replies, _ = core.committed()
    else:
        replies = core.sendable(writing=False)
    assert reply_types(replies) == [expected]


def test_replies_that_need_no_commit_are_sent_once(tmp_path):
    core = make_core(tmp_path)
    core.receive([*ENVELOPE, b"{not json"], 0.0)
    assert reply_types(core.sendable(writing=False)) == ["invalid message"]
    core.receive([*ENVELOPE, b"[1, 2"], 0.0)
    assert reply_types(core.sendable(writing=False)) == ["invalid message"]
    assert core.sendable(writing=False) == []


def _raises_after_changing(msg, config, checklist):
    checklist["a"]["added by after"] = 1
    checklist["b"]["nested"].append(3)
    checklist["c"] = "new entry"
    del checklist["d"]
    raise RuntimeError("after_a failed")


@pytest.mark.parametrize("payload", [{"x": 2, "y": 1}, "replaces the entry", None])
def test_an_after_function_that_raises_leaves_the_checklist_as_it_was(tmp_path, payload):
    core = make_core(tmp_path, after_a=_raises_after_changing)
    before = {"a": {"x": 1}, "b": {"nested": [1, 2]}, "d": 4}
    core.checklist.update(json.loads(json.dumps(before)))
    core.checklist.to_yaml()
    core.receive(frames("a", payload=payload), 0.0)
    assert dict(core.checklist) == before
    commit = core.start_commit(core.config["checklist file"])
    written = dict(commit.replace).get(core.config["checklist file"])
    assert written is None or yaml.safe_load(written) == before
    replies, launches = core.committed()
    assert reply_types(replies) == ["after_worker function failed"] and launches == []


def test_a_missing_after_function_leaves_the_checklist_as_it_was(tmp_path):
    core = make_core(tmp_path)
    core.receive(frames("b", payload={"x": 1}), 0.0)
    assert dict(core.checklist) == {}


UNWRITABLE = [
    ('{"source": "a", "type": "success", "payload": {"x": "\\ud800"}}', "lone surrogate"),
    ('{"source": "a", "type": "success", "payload": {"\\udfff": 1}}', "lone surrogate"),
    ('{"source": "a", "type": "success", "id": "a:1:\\ud800:1"}', "lone surrogate"),
    ('{"source": "\\ud800", "type": "success", "id": "x:1:ab:1"}', "lone surrogate"),
    ('{"source": "a", "type": "success", "payload": ' + "[" * 400 + "]" * 400 + "}", "nested"),
    ("source: a\ntype: success\npayload: 0x" + "f" * 4000 + "\n", "bits"),
]


@pytest.mark.parametrize("text, why", UNWRITABLE)
def test_what_cannot_be_written_is_refused_and_later_commits_work(tmp_path, text, why):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    core.receive([*ENVELOPE, text.encode("utf-8", "surrogatepass")], 0.0)
    refused = core.sendable(writing=False)
    assert reply_types(refused) == ["invalid message"]
    assert why in json.loads(refused[0].text)["payload"]
    core.receive(frames("a", payload={"fine": 1}, msg_id="a:2:ab:1"), 0.0)
    commit = core.start_commit(core.config["checklist file"])
    assert yaml.safe_load(dict(commit.replace)[core.config["checklist file"]]) == {"a": {"fine": 1}}
    replies, _ = core.committed()
    assert reply_types(replies) == ["ack"]


def test_an_entry_user_code_made_unwritable_does_not_stop_commits(tmp_path):
    def after_a(msg, config, checklist):
        checklist["poison"] = {"bad": "\ud800", "deep": json.loads("[" * 900 + "]" * 900)}
        return []

    core = make_core(tmp_path, after_a=after_a)
    core.receive(frames("a", payload={"fine": 1}), 0.0)
    commit = core.start_commit(core.config["checklist file"])
    written = yaml.safe_load(dict(commit.replace)[core.config["checklist file"]])
    assert written["a"] == {"fine": 1} and "poison" in str(written)
    replies, _ = core.committed()
    assert reply_types(replies) == ["ack"]


def test_a_commit_that_cannot_be_made_lets_no_reply_out(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    core.receive(frames("a", payload={"x": 1}), 0.0)
    core.checklist.to_yaml = lambda *a: 1 / 0  # whatever raises, not only YAMLError
    with pytest.raises(ZeroDivisionError):
        core.start_commit(core.config["checklist file"])
    assert core.dirty and core.sendable(writing=False) == []
    del core.checklist.to_yaml
    core.start_commit(core.config["checklist file"])
    replies, _ = core.committed()
    assert reply_types(replies) == ["ack"]


def test_reply_ids_are_kept_for_a_time_then_forgotten(tmp_path):
    from nowcast.state import ReplyJournal

    journal = ReplyJournal(str(tmp_path / "replies.jsonl"), keep_for=100.0, remembered=10_000)
    for n in range(5000):  # a burst: all within a second
        journal.remember(f"id-{n}", "ack", 1000.0 + n / 5000)
    assert "id-0" in journal and len(journal) == 5000
    journal.remember("late", "ack", 1099.0)
    assert "id-0" in journal
    journal.remember("later", "ack", 1101.0)
    assert "id-0" not in journal and "id-4999" not in journal and "late" in journal
    for n in range(10_001):  # bounded in memory, however fast they come
        journal.remember(f"burst-{n}", "ack", 1102.0)
    assert len(journal) == 10_000 and "burst-10000" in journal


def test_the_journal_keeps_times_across_a_restart(tmp_path):
    from nowcast.committer import Commit
    from nowcast.state import ReplyJournal

    path = str(tmp_path / "replies.jsonl")
    journal = ReplyJournal(path, keep_for=100.0)
    journal.remember("old", "ack-old", 1000.0)
    journal.remember("new", "ack-new", 1090.0)
    commit = Commit(str(tmp_path))
    journal.add_to(commit)
    commit.write()
    again = ReplyJournal(path, keep_for=100.0)
    again.load(now=1150.0)
    assert "old" not in again and again["new"] == "ack-new"


def test_the_history_keeps_the_replies_and_the_state_file_carries_its_commits_rows(tmp_path):
    """With the history on, a commit's replies are kept in its rows of the
    messages, and the reply journal is not written (one flush less). A commit
    that rewrites the state file (a launch decided) carries its history rows in
    it, and the history is written after it: a manager killed in between has
    them written again at its next start."""
    from nowcast import history

    conn = history.open_for_writing(str(tmp_path / "history.sqlite"))
    core = make_core(
        tmp_path,
        history=conn,
        after_a=lambda msg, config, checklist: [],
        after_b=lambda msg, config, checklist: [NextWorker("a")],
    )
    path = core.config["checklist file"]

    def answers():
        return dict(conn.execute("SELECT id, answer FROM messages"))

    def write(commit):
        commit.write()
        return core.committed()[0]

    write(core.start_commit(path))  # the first commit writes the state file
    core.receive(frames("a", msg_id="a-1.1"), 1.0)
    commit = core.start_commit(path)
    assert core.state.path not in dict(commit.replace) and commit.append == []
    (reply,) = write(commit)
    assert answers()["a-1.1"] == reply.text

    core.receive(frames("b", msg_id="b-1.1"), 2.0)  # decides a launch: the state changes
    commit = core.start_commit(path)
    assert core.state.path in dict(commit.replace) and commit.append == []
    number = core.state.history_commit
    commit.history = None  # killed after the state file's rename, before the history
    commit.write()
    assert "b-1.1" not in answers()

    state = ManagerState.load(path, now=3.0)  # the next manager
    assert state.history_commit == number
    recorder = Recorder(conn, core.config)
    assert recorder.replay(state.history_commit, state.history_rows)
    assert json.loads(answers()["b-1.1"])["id"] == "b-1.1"
    assert recorder.state_commit() == number
    assert not recorder.replay(state.history_commit, state.history_rows)  # once
    assert state.replies.merge(recorder.applied_since(0.0), 3.0) == 1  # b-1.1 came
    assert set(state.replies.replies) == {"a-1.1", "b-1.1"}  # from "applied"

    core.receive(frames("a", msg_id="a-2.1"), 3.0)
    core.start_commit(path)
    core.commit_failed()  # its rows and its reply go into the next commit
    (reply,) = write(core.start_commit(path))
    assert answers()["a-2.1"] == reply.text


def _commit(core):
    core.start_commit(core.config["checklist file"])
    return core.committed()


def test_only_clear_checklist_clears_it_whatever_the_other_types_are_named(tmp_path):
    calls = []
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: calls.append(msg.type) or [])
    workers = core.config["message registry"]["workers"]
    workers["a"].update({"abort": "a type that sorts first", "clear checklist": "cleared"})
    core.receive(frames("a", payload={"kept": 1}), 0.0)
    core.receive(frames("a", "abort", {"also": 2}), 0.0)
    replies, _ = _commit(core)
    assert reply_types(replies) == ["ack", "ack"] and calls == ["success", "abort"]
    assert core.checklist == {"a": {"kept": 1, "also": 2}}
    core.receive(frames("a", "clear checklist"), 0.0)
    replies, _ = _commit(core)
    assert reply_types(replies) == ["checklist cleared"] and core.checklist == {}


def test_a_status_type_from_a_worker_is_its_message_not_a_status_request(tmp_path):
    nothing = lambda msg, config, checklist: []  # noqa: E731
    core = make_core(tmp_path, after_a=nothing, after_z=nothing)
    entry = {"success": "ok", "status": "a worker's own status report"}
    # "a" sorts before nowcast.status, "z" after
    core.config["message registry"]["workers"].update({"a": dict(entry), "z": dict(entry)})
    for worker in ["a", "z"]:
        assert core.receive(frames(worker, "status", {"level": 3}), 0.0) is None  # held, applied
    replies, _ = _commit(core)
    assert reply_types(replies) == ["ack"] * 2
    assert core.checklist == {"a": {"level": 3}, "z": {"level": 3}}
    # and the status tool's name with another type is an unregistered worker
    core.receive(frames("nowcast.status", "tally"), 0.0)
    core.receive(frames("nowcast.status", "report"), 0.0)  # sorts before "status"
    replies, _ = _commit(core)
    assert reply_types(replies) == ["unregistered worker"] * 2


def test_a_status_request_is_answered_at_once_even_while_a_commit_is_written(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    core.receive(frames("a", payload={"x": 1}), 0.0)
    core.start_commit(core.config["checklist file"])
    core.receive(frames("a", payload={"x": 2}), 0.0)  # waits for the next commit
    reply = core.receive(frames("nowcast.status", "status"), 0.0)
    assert reply_types([reply]) == ["status"] and reply.envelope == ENVELOPE
    replies, _ = core.committed()
    assert reply_types(replies) == ["ack"]  # the status reply is not among them
    replies, _ = _commit(core)
    assert reply_types(replies) == ["ack"]


def test_status_shows_how_long_each_worker_ran_its_job_and_when_retries_are_due(tmp_path):
    from nowcast.supervision import Launched, Retry

    core = make_core(tmp_path)
    supervision = core.state.supervision
    job = {"id": "77", "state": "RUNNING", "queued since": 900.0, "running since": 940.0}
    supervision.running += [
        Launched("a", ["--x"], "localhost", 123, 960.0, tries=2, timeout=60.0),
        Launched("b", [], "cluster", None, 900.0, job=job),
    ]
    worker = {"module": "a", "args": [], "host": "localhost"}
    supervision.retries += [
        Retry(worker, 2, 1030.0),
        Retry(worker, 3, 1000.5),
        Retry(worker, 2, 995.0),
    ]
    status = core.status(1000.0)
    process, batch = status["running"]
    assert process["running for"] == 40.0 and process["try"] == 2 and process["timeout"] == 60.0
    assert process["pid"] == 123 and "job" not in process
    assert batch["running for"] == 100.0
    assert batch["job"]["id"] == "77" and batch["job"]["in queue"] == 40.0
    assert batch["job"]["running for"] == 60.0
    # a retry past its due time, not yet taken for launching, is due now
    assert [r["due in"] for r in status["retries pending"]] == [30.0, 0.5, 0.0]
    assert [r["try"] for r in status["retries pending"]] == [2, 3, 2]


def test_an_envelope_with_no_message_frame_or_two_is_an_invalid_message(tmp_path):
    core = make_core(tmp_path)
    core.receive(list(ENVELOPE), 0.0)
    core.receive([*frames("a"), b"more"], 0.0)
    assert reply_types(core.sendable(writing=False)) == ["invalid message"] * 2
    core.receive([b"no envelope"], 0.0)  # dropped: there is no one to answer
    assert core.sendable(writing=False) == [] and not core.dirty


def test_a_commit_launches_only_what_it_holds(tmp_path):
    core = make_core(
        tmp_path,
        after_a=lambda msg, config, checklist: [NextWorker("b")],
        after_b=lambda msg, config, checklist: [NextWorker("a")],
    )
    core.receive(frames("a"), 0.0)
    core.start_commit(core.config["checklist file"])
    core.receive(frames("b"), 0.0)  # decided while that commit is being written
    _, launches = core.committed()
    assert [worker for worker, *_ in launches] == [NextWorker("b")]
    _, launches = _commit(core)
    assert [worker for worker, *_ in launches] == [NextWorker("a")]


def test_each_retry_waits_its_own_delay_and_the_last_one_after_that(tmp_path):
    from nowcast.supervision import Launched

    core = make_core(tmp_path)
    core.config["message registry"]["workers"]["a"].update(
        {"retries": 4, "retry delay": [10, 20, 30]}
    )
    for tries, delay in [(1, 10), (2, 20), (3, 30), (4, 30)]:
        launched = Launched("a", [], "localhost", 123, 0.0, tries=tries)
        assert core.apply(Message("a", "failure"), 100.0, launched).type == "ack"
        retry = core.state.supervision.retries[-1]
        assert (retry.tries, retry.due) == (tries + 1, 100.0 + delay)
    core.config["message registry"]["workers"]["a"]["retry delay"] = 5
    core.apply(Message("a", "crash"), 100.0, Launched("a", [], "localhost", 1, 0.0, tries=2))
    assert core.state.supervision.retries[-1].due == 105.0
    del core.config["message registry"]["workers"]["a"]["retry delay"]  # 0 by default
    core.apply(Message("a", "crash"), 100.0, Launched("a", [], "localhost", 1, 0.0, tries=2))
    assert core.state.supervision.retries[-1].due == 100.0


@pytest.mark.parametrize("msg_type", ["success", "failure"])  # sorting after "need", and before
def test_a_message_sent_again_with_its_id_is_answered_again_not_applied_again(tmp_path, msg_type):
    calls = []
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: calls.append(msg.id) or [])
    core.receive(frames("a", msg_type, payload={"n": 1}, msg_id="a:1:t:1"), 0.0)
    first, _ = _commit(core)
    core.receive(frames("a", msg_type, payload={"n": 2}, msg_id="a:1:t:1"), 1.0)
    assert not core.dirty
    again = core.sendable(writing=False)
    assert [r.text for r in again] == [r.text for r in first]
    assert calls == ["a:1:t:1"] and core.checklist == {"a": {"n": 1}}


def test_replies_to_messages_applied_during_a_commit_wait_for_the_next(tmp_path):
    core = make_core(
        tmp_path,
        after_a=lambda msg, config, checklist: [],
        after_b=lambda msg, config, checklist: [],
    )
    core.receive(frames("a", msg_id="a:1:t:1"), 0.0)
    core.start_commit(core.config["checklist file"])
    core.receive(frames("b", payload={"x": 1}, msg_id="b:1:t:1"), 0.0)  # not in that commit
    replies, _ = core.committed()
    assert [json.loads(r.text)["id"] for r in replies] == ["a:1:t:1"]
    assert core.sendable(writing=False) == []
    replies, _ = _commit(core)
    assert [json.loads(r.text)["id"] for r in replies] == ["b:1:t:1"]


def test_a_retry_that_falls_due_is_committed_then_launched(tmp_path):
    from nowcast.supervision import Launched

    core = make_core(tmp_path)
    core.config["message registry"]["workers"]["a"].update({"retries": 1, "retry delay": 5})
    core.apply(Message("a", "failure"), 100.0, Launched("a", [], "localhost", 1, 0.0))
    _commit(core)
    core.queue_due_retries(104.0)
    assert not core.dirty  # not due yet
    core.queue_due_retries(105.0)
    assert core.dirty  # a launch to write down before it happens
    _, launches = _commit(core)
    assert [(worker, tries) for worker, tries, _ in launches] == [(NextWorker("a"), 2)]


def test_ids_are_remembered_for_longer_than_a_worker_goes_on_re_sending():
    from nowcast import defaults
    from nowcast.core import keep_ids_for

    config = Config()
    margin = defaults.REMEMBER_MARGIN
    config["zmq"] = {"reply timeout": 7, "give up after": 100}
    assert keep_ids_for(config) == 100 + 7 + margin
    config["zmq"] = {}
    assert keep_ids_for(config) == defaults.GIVE_UP_AFTER + defaults.REPLY_TIMEOUT + margin
    config["zmq"] = {"reply timeout": "soon", "give up after": -5}
    assert keep_ids_for(config) == defaults.REPLY_TIMEOUT + margin


def test_a_failure_is_not_retried_unless_retries_are_set(tmp_path):
    from nowcast.supervision import Launched

    calls = []
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: calls.append(msg.type) or [])
    launched = Launched("a", [], "localhost", 123, 0.0)
    assert core.apply(Message("a", "failure"), 100.0, launched).type == "ack"
    assert calls == ["failure"] and core.state.supervision.retries == []


def test_an_after_function_returning_what_is_not_a_next_worker_is_refused(tmp_path):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [NextWorker("b"), "b"])
    core.receive(frames("a", payload={"x": 1}), 0.0)
    replies, launches = _commit(core)
    assert reply_types(replies) == ["after_worker function failed"]
    assert launches == [] and core.state.pending == [] and "a" not in core.checklist


def test_a_failed_commit_holds_every_reply_including_those_received_while_it_was_written(
    tmp_path,
):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    core.receive(frames("a", msg_id="a:1:t:1"), 0.0)
    core.start_commit(core.config["checklist file"])
    for n in (2, 3, 4):  # not in that commit
        core.receive(frames("a", msg_id=f"a:{n}:t:1"), 0.0)
    core.commit_failed()
    replies, _ = _commit(core)
    assert [json.loads(r.text)["id"] for r in replies] == [f"a:{n}:t:1" for n in (1, 2, 3, 4)]


def test_a_race_group_waits_for_each_named_worker_also_one_its_list_does_not_launch(tmp_path):
    """``c`` is in the group but launched by something else (the scheduler, say):
    what ``b`` and ``c`` decide waits for both; ``b`` is launched twice, so it
    counts as two."""
    core = make_core(
        tmp_path,
        after_a=lambda msg, config, checklist: (
            [NextWorker("b", ["1"]), NextWorker("b", ["2"])],
            {"b", "c"},
        ),
        after_b=lambda msg, config, checklist: [NextWorker("d")],
        after_c=lambda msg, config, checklist: [NextWorker("e")],
    )
    core.config["message registry"]["workers"]["c"] = {"success": "ok"}
    core.receive(frames("a"), 0.0)
    _, launches = _commit(core)
    assert [w for w, *_ in launches] == [NextWorker("b", ["1"]), NextWorker("b", ["2"])]
    (group,) = core.status(0.0)["race groups"]
    assert group["waiting for"] == {"b": 2, "c": 1}
    for source in ["b", "c", "b"]:
        assert _commit(core)[1] == []
        core.receive(frames(source), 0.0)
    _, launches = _commit(core)
    assert [w for w, *_ in launches] == [NextWorker("d"), NextWorker("e")]
    assert core.state.races.groups == []


@pytest.mark.parametrize("names", ["bc", {"b", 3}, ["b", None]])
def test_an_after_function_naming_its_race_group_with_other_than_strings_is_refused(
    tmp_path, names
):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: ([NextWorker("b")], names))
    core.receive(frames("a", payload={"x": 1}), 0.0)
    replies, launches = _commit(core)
    assert reply_types(replies) == ["after_worker function failed"]
    assert "second item" in json.loads(replies[0].text)["payload"]
    assert launches == [] and core.state.races.groups == [] and "a" not in core.checklist


@pytest.mark.parametrize("result", [([],), ([], set(), None)])
def test_an_after_function_returning_a_tuple_of_other_than_two_is_refused_saying_so(
    tmp_path, result
):
    core = make_core(tmp_path, after_a=lambda msg, config, checklist: result)
    core.receive(frames("a", payload={"x": 1}), 0.0)
    replies, launches = _commit(core)
    payload = json.loads(replies[0].text)["payload"]
    assert reply_types(replies) == ["after_worker function failed"]
    assert payload == (
        f"TypeError: expected a list or (list, set of worker names), got a tuple of {len(result)}"
    )
    assert launches == [] and "a" not in core.checklist


def test_retry_events_count_the_tries_and_no_retries_exhausted_without_retries(tmp_path):
    from nowcast.supervision import Launched

    core = make_core(tmp_path, after_a=lambda msg, config, checklist: [])
    events = []
    core.history.on_event = events.append
    core.config["message registry"]["workers"]["a"].update({"retries": 2, "retry delay": 10})
    for tries in (1, 2, 3):
        core.apply(
            Message("a", "failure"), 100.0, Launched("a", [], "localhost", 1, 0.0, tries=tries)
        )
    _commit(core)
    retries = [e.detail for e in events if e.event == "retry"]
    assert [(d["try"], d["summary"]) for d in retries] == [
        (1, "a failed on try 1 of 3; trying again in 10 s"),
        (2, "a failed on try 2 of 3; trying again in 10 s"),
    ]
    assert [e.detail["tries"] for e in events if e.event == "retries exhausted"] == [3]
    events.clear()
    del core.config["message registry"]["workers"]["a"]["retries"]  # none: one try
    core.apply(Message("a", "failure"), 100.0, Launched("a", [], "localhost", 1, 0.0))
    _commit(core)
    assert [e.event for e in events] == ["failure"]


def test_a_yaml_message_is_answered_in_yaml_which_a_yaml_reader_reads_right(tmp_path):
    """NEMO_Nowcast's workers send YAML and read the reply as YAML: a reply in
    JSON would give them ``1e+20`` as a string (YAML 1.1 floats need a dot)."""
    core = make_core(tmp_path)
    core.checklist["a"] = {"big": 1e20, "text": "caf\u00e9 \U0001f600"}
    core.config["message registry"]["workers"]["a"]["need"] = "a worker asks for a key"
    core.receive([*ENVELOPE, b"source: a\ntype: need\npayload: a\n"], 0.0)
    replies, _ = _commit(core)
    reply = yaml.safe_load(replies[0].text)
    assert reply["type"] == "ack" and reply["payload"] == {
        "big": 1e20,
        "text": "caf\u00e9 \U0001f600",
    }


def test_a_need_too_big_for_a_reply_is_refused_in_the_form_it_came_in(tmp_path):
    core = make_core(tmp_path)
    core.config["zmq"] = {"max message size": 300}
    core.checklist["a"] = {"text": "x" * 1000}
    core.config["message registry"]["workers"]["a"]["need"] = "a worker asks for a key"
    core.receive([*ENVELOPE, b"source: a\ntype: need\npayload: a\n"], 0.0)
    core.receive(frames("a", "need", "a"), 0.0)
    replies, _ = _commit(core)
    in_yaml, in_json = (reply.text for reply in replies)
    assert not in_yaml.lstrip().startswith("{")  # YAML, for NEMO_Nowcast's workers
    assert yaml.safe_load(in_yaml)["type"] == "reply too big"
    answer = json.loads(in_json)
    assert answer["type"] == "reply too big"
    assert "is 1,0" in answer["payload"] and "max message size (300 bytes)" in answer["payload"]


def test_a_need_reply_of_exactly_the_max_message_size_is_sent(tmp_path):
    def reply_to_need(directory, text: str, max_size: int) -> dict:
        directory.mkdir()
        core = make_core(directory)
        core.config["zmq"] = {"max message size": max_size}
        core.checklist["a"] = {"text": text}
        core.config["message registry"]["workers"]["a"]["need"] = "a worker asks for a key"
        core.receive(frames("a", "need", "a"), 0.0)
        replies, _ = _commit(core)
        return json.loads(replies[0].text), len(replies[0].text)

    _, empty = reply_to_need(tmp_path / "empty", "", 10**6)
    limit = empty + 700  # the reply to a text of 700 characters is exactly this long
    assert reply_to_need(tmp_path / "at", "x" * 700, limit)[0]["type"] == "ack"
    assert reply_to_need(tmp_path / "over", "x" * 701, limit)[0]["type"] == "reply too big"
