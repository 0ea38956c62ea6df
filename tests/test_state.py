"""nowcast.state: the reply journal and the manager's state, written through real
commits to real files."""

from __future__ import annotations

import json

import pytest

from nowcast import defaults
from nowcast.committer import Commit
from nowcast.state import ManagerState, ReplyJournal


def commit(journal: ReplyJournal, directory) -> None:
    """Write what the journal has to add, as the manager's committer does."""
    batch = Commit(str(directory))
    journal.add_to(batch)
    batch.write()
    journal.committed()


def _write_and_load(tmp_path, state: object):
    """Write ``state`` as the state file beside ``tmp_path``'s checklist and read
    it as a manager starting: the file's path, and what was read."""
    state_file = tmp_path / "checklist.yaml.manager-state.json"
    state_file.write_text(json.dumps(state))
    return state_file, ManagerState.load(str(tmp_path / "checklist.yaml"))


def test_the_journal_is_appended_to_and_rewritten_shorter_only_when_it_has_doubled(tmp_path):
    path = tmp_path / "replies.jsonl"
    journal = ReplyJournal(str(path), remembered=3)
    inodes = []
    for n in range(20):
        journal.remember(f"id-{n}", f"reply {n}")
        commit(journal, tmp_path)
        lines = path.read_text().splitlines()
        assert len(lines) <= 2 * 3  # bounded: never more than twice what is remembered
        assert json.loads(lines[-1])[:2] == [f"id-{n}", f"reply {n}"]
        inodes.append(path.stat().st_ino)
    rewrites = sum(1 for a, b in zip(inodes, inodes[1:], strict=False) if a != b)
    assert 1 <= rewrites <= 20 // 3  # appended in between, not rewritten each time
    again = ReplyJournal(str(path), remembered=3)
    again.load()
    assert list(again.replies.items()) == [(f"id-{n}", f"reply {n}") for n in (17, 18, 19)]


def test_the_journal_stays_bounded_when_messages_come_in_batches(tmp_path):
    path = tmp_path / "replies.jsonl"
    journal = ReplyJournal(str(path), remembered=3)
    for batch in range(6):
        for n in range(4):  # a group commit of 4 messages
            journal.remember(f"id-{batch}-{n}", "ack")
        commit(journal, tmp_path)
        # appended while that stays within twice what is remembered, else rewritten
        # with what is remembered besides the batch, and the batch
        assert len(path.read_text().splitlines()) <= max(2 * 3, 3 + 4)
    assert list(journal.replies) == ["id-5-1", "id-5-2", "id-5-3"]


def test_at_most_as_many_ids_as_configured_are_remembered(tmp_path):
    journal = ReplyJournal(str(tmp_path / "replies.jsonl"), remembered=3)
    for n in range(3):
        journal.remember(f"id-{n}", "ack")
    assert list(journal.replies) == ["id-0", "id-1", "id-2"]
    journal.remember("id-3", "ack")
    assert list(journal.replies) == ["id-1", "id-2", "id-3"]


def test_ids_forgotten_before_their_time_are_warned_of_once(tmp_path, caplog):
    # beyond `remembered` ids the oldest are forgotten early, and a worker re-sending
    # one of those would have it applied again: the operator is told, once, and
    # only then (not when ids are forgotten in their time)
    import logging

    journal = ReplyJournal(str(tmp_path / "replies.jsonl"), keep_for=10.0, remembered=3)
    with caplog.at_level(logging.WARNING, logger="nowcast.state"):
        for n in range(3):
            journal.remember(f"id-{n}", "ack", now=100.0 + n)
        journal.remember("id-3", "ack", now=200.0)  # the first three are past their time
        assert caplog.records == []
        for n in range(4, 10):
            journal.remember(f"id-{n}", "ack", now=200.0 + n)
    assert list(journal.replies) == ["id-7", "id-8", "id-9"]
    [warning] = caplog.records
    assert "forgetting the oldest early" in warning.getMessage()


def test_ids_after_an_unreadable_line_are_still_read(tmp_path):
    path = tmp_path / "replies.jsonl"
    path.write_text('["a", "ra"]\n["b", "r\n["c", "rc"]\n')
    journal = ReplyJournal(str(path))
    journal.load()
    assert dict(journal.replies) == {"a": "ra", "c": "rc"}


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_one(tmp_path):
    # a power cut in the middle of an append leaves a line without its end; the
    # next manager's first append must not be glued onto it
    path = tmp_path / "replies.jsonl"
    path.write_text('["a", "ra"]\n["b", "r')
    journal = ReplyJournal(str(path))
    journal.load()
    assert dict(journal.replies) == {"a": "ra"}
    journal.remember("c", "rc")
    commit(journal, tmp_path)
    again = ReplyJournal(str(path))
    again.load()
    assert dict(again.replies) == {"a": "ra", "c": "rc"}


def test_a_journal_left_empty_or_whole_is_appended_to_without_blank_lines(tmp_path):
    path = tmp_path / "replies.jsonl"
    path.write_bytes(b"")  # a first append that failed is cut back to nothing
    for n in range(3):
        journal = ReplyJournal(str(path))
        journal.load()  # as each new manager does
        journal.remember(f"id-{n}", "ack")
        commit(journal, tmp_path)
        assert b"\n\n" not in path.read_bytes()
    assert list(tmp_path.glob("*.unreadable-*")) == []  # nothing taken for foreign lines
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line[:2] for line in lines] == [[f"id-{n}", "ack"] for n in range(3)]


def test_the_last_few_messages_are_kept_newest_last(tmp_path):
    state = ManagerState(ReplyJournal(str(tmp_path / "replies.jsonl")))
    for n in range(defaults.RECENT_MESSAGES + 5):
        state.note_message(f"w{n}", "success", float(n))
    assert [m["source"] for m in state.recent] == [
        f"w{n}" for n in range(5, defaults.RECENT_MESSAGES + 5)
    ]


# What a manager writes, with one of everything, for the tests below to spoil.
GOOD_STATE = {
    "format": 2,
    "recent messages": [{"time": 1.5, "source": "a", "type": "success"}],
    "applied": [["a-1.1", '{"type": "ack"}', 1.5]],
    "race groups": [
        {
            "waiting": {"a": 1, "b": 0},
            "collected": [{"module": "w.c", "args": ["x"], "host": "localhost"}],
        }
    ],
    "pending launches": [{"module": "w.d", "args": [], "host": "localhost", "try": 2}],
    "supervision": {
        "running": [
            {
                "module": "w.e",
                "args": ["--x"],
                "host": "localhost",
                "pid": 4194000,
                "started": 1.0,
                "tries": 1,
                "timeout": 5.0,
                "grace": 1.0,
                "proc_start": None,
                "term_sent": None,
                "kill_sent": None,
                "reported": False,
                "stderr_path": None,
                "exit_code": None,
                "exited": False,
            }
        ],
        "retries": [
            {"worker": {"module": "w.f", "args": [], "host": "localhost"}, "tries": 2, "due": 3.0}
        ],
        "stopping": [[4194001, 2.0]],
    },
}


def _paths(value, path=()):
    """Every place in a JSON value, as a path of keys and indexes."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    place = copy
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = new
    return copy


def _use(state: ManagerState) -> None:
    """What the manager does with a state it read, at start and in its loop."""
    import time

    now = time.time()
    state.add_to(Commit("."))
    state.supervision.overdue(now)
    state.supervision.poll_exits()
    state.supervision.groups_to_kill(now)
    state.supervision.due_retries(now)
    state.races.report("a", [])
    for worker, tries, _token in state.pending:
        assert isinstance(worker.module, str) and tries >= 1


def test_a_state_file_of_any_content_is_read_or_moved_aside(tmp_path):
    """Property: any JSON in any field (or any bytes) never raises at start; a
    file that cannot be taken whole is moved aside with one ERROR line."""
    import logging

    from hypothesis import given, settings
    from hypothesis import strategies as st

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )
    places = list(_paths(GOOD_STATE))
    contents = st.one_of(
        st.tuples(st.sampled_from(places), json_values).map(
            lambda pair: json.dumps(_replaced(GOOD_STATE, *pair)).encode()
        ),
        st.binary(max_size=100),
        st.just(json.dumps(GOOD_STATE).encode()),
    )
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep(logging.ERROR)
    logging.getLogger("nowcast.state").addHandler(keep)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(contents)
    def check(content):
        directory = tmp_path / "t"
        directory.mkdir(exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        checklist = directory / "checklist.yaml"
        (directory / "checklist.yaml.manager-state.json").write_bytes(content)
        records.clear()
        state = ManagerState.load(str(checklist))
        _use(state)
        aside = list(directory.glob("*.unreadable-*"))
        assert len(aside) == len(records) <= 1
        if aside:
            assert aside[0].read_bytes() == content

    try:
        check()
    finally:
        logging.getLogger("nowcast.state").removeHandler(keep)


def test_the_state_a_manager_writes_is_read_back(tmp_path):
    path = tmp_path / "checklist.yaml.manager-state.json"
    path.write_text(json.dumps(GOOD_STATE))
    state = ManagerState.load(str(tmp_path / "checklist.yaml"))
    assert not list(tmp_path.glob("*.unreadable-*"))
    assert state.supervision.running[0].pid == 4194000 and len(state.pending) == 1


def test_a_journal_with_lines_nowcast_did_not_write_is_moved_aside_keeping_the_rest(tmp_path):
    path = tmp_path / "replies.jsonl"
    content = b'["a", "ra"]\nnull\n[1, 2]\n\xff\xfe\n["b", "r\n["c", "rc"]\n\x00\n["d", "rd"]'
    path.write_bytes(content)
    journal = ReplyJournal(str(path))
    journal.load()
    assert dict(journal.replies) == {"a": "ra", "c": "rc"}
    [aside] = tmp_path.glob("replies.jsonl.unreadable-*")
    assert aside.read_bytes() == content and not path.exists()
    commit(journal, tmp_path)  # the kept ids are written afresh, even with nothing new
    again = ReplyJournal(str(path))
    again.load()
    assert dict(again.replies) == {"a": "ra", "c": "rc"}


def test_any_journal_content_never_raises(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    lines = st.lists(
        st.one_of(
            st.binary(max_size=20),
            st.tuples(st.text(max_size=5), st.text(max_size=5)).map(
                lambda p: json.dumps(list(p)).encode()
            ),
        ),
        max_size=6,
    )

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(lines)
    def check(content):
        path = tmp_path / "replies.jsonl"
        for old in tmp_path.glob("replies.jsonl*"):
            old.unlink()
        path.write_bytes(b"\n".join(content))
        journal = ReplyJournal(str(path))
        journal.load()
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in journal.replies.items())
        journal.remember("new", "reply")
        commit(journal, tmp_path)
        again = ReplyJournal(str(path))
        again.load()
        assert again.replies["new"] == "reply"

    check()


@pytest.mark.timeout(90)
def test_a_manager_starts_whatever_its_files_hold_and_removes_temporaries(system):
    """Real processes: every file the manager reads at start spoiled, temporary
    files of a killed write beside them; it starts, answers, and says so once each."""
    import subprocess
    import sys

    system.worker_module("known")
    system.after("def after_known(msg, config, checklist):\n    return []\n")
    system.write()
    checklist = system.checklist_file
    checklist.write_bytes(b"a: \xff\xfe\x00 not utf-8\n")
    state = checklist.with_name(checklist.name + ".manager-state.json")
    state.write_text('{"supervision": {"running": [{"pid": "not a pid"}]}}')
    journal = checklist.with_name(checklist.name + ".manager-replies.jsonl")
    journal.write_bytes(b'null\n["kept", "{}"]\n')
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    temporaries = [
        checklist.with_name(f".{name}.{int(dead.stdout)}.tmp")
        for name in (checklist.name, state.name, journal.name)
    ]
    for temporary in temporaries:
        temporary.write_bytes(b"half a write")
    system.start()
    assert (
        system.request({"source": "known", "type": "success", "payload": 1, "id": "k:1:ab:1"})[
            "type"
        ]
        == "ack"
    )
    log = system.log()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 3, errors
    assert len(list(system.dir.glob("*.unreadable-*"))) == 3
    assert "Traceback" not in log
    assert not any(t.exists() for t in temporaries)
    assert system.checklist() == {"known": 1}
    # the ids of the journal's readable lines were kept and written afresh
    assert json.dumps(["kept", "{}"])[:-1] + "," in journal.read_text()  # [id, reply, time]


def test_a_state_file_of_the_wrong_shape_is_moved_aside_not_fatal(tmp_path):
    checklist_file = str(tmp_path / "checklist.yaml")
    for text in ['["a list"]', '{"race groups": 5}', "{not json"]:
        state_file = tmp_path / "checklist.yaml.manager-state.json"
        state_file.write_text(text)
        state = ManagerState.load(checklist_file)
        assert state.races.groups == []
        assert not state_file.exists()
        aside = list(tmp_path.glob("checklist.yaml.manager-state.json.unreadable-*"))
        assert len(aside) >= 1
        for path in aside:
            path.unlink()


def test_the_durable_part_is_the_json_of_the_whole_as_launches_come_and_go(tmp_path):
    from nowcast.next_worker import NextWorker
    from nowcast.race import worker_to_plain

    state = ManagerState(ReplyJournal(str(tmp_path / "replies.jsonl")))
    state.races.start(["member", "member"])

    def whole() -> str:
        return json.dumps(
            {
                "race groups": state.races.to_plain(),
                "pending launches": [
                    {**worker_to_plain(w), "try": n, "token": t} for w, n, t in state.pending
                ],
                "supervision": state.supervision.to_plain(),
            },
            ensure_ascii=False,
        )

    for round_ in range(50):
        state.pending = state.pending[3:] + [
            (NextWorker("member", [str(round_), "é"]), 1 + round_ % 2, f"t{round_}-{i}")
            for i in range(5)
        ]
        if round_ % 7 == 0:
            state.pending = [(w, n + 1, t) for w, n, t in state.pending]  # a retry's try
        assert state._durable_json() == whole()
    state.pending = []
    assert state._durable_json() == whole()


def test_the_json_of_launches_made_is_not_kept_once_they_are_launched(tmp_path):
    # each pending launch's JSON is made once, and kept while it is pending: a
    # manager that goes on making launches for months must not keep them all
    from nowcast.next_worker import NextWorker

    state = ManagerState(ReplyJournal(str(tmp_path / "replies.jsonl")))
    for round_ in range(100):
        state.pending = [
            (NextWorker("member", [str(round_)]), 1, f"t{round_}-{i}") for i in range(3)
        ]
        state._durable_json()
    assert len(state._pending_json) <= 2 * 3 + 64


def test_a_crash_between_the_state_file_and_the_journal_loses_no_applied_id(tmp_path):
    """The state file is renamed into place before the reply journal is appended:
    a manager killed between the two has its messages' launches on disk, and must
    also know those messages were applied, or a re-send launches them again."""
    from nowcast.next_worker import NextWorker

    checklist = str(tmp_path / "checklist.yaml")
    state = ManagerState.load(checklist, now=100.0)
    state.remember("w-1.1", '{"type": "ack", "id": "w-1.1"}', 100.0)
    state.pending.append((NextWorker("next"), 1, "t1"))
    batch = Commit(str(tmp_path))
    state.add_to(batch)
    batch.append = []  # killed after the renames, before the journal's append
    batch.write()

    again = ManagerState.load(checklist, now=101.0)
    assert again.replies.get("w-1.1") == '{"type": "ack", "id": "w-1.1"}'
    assert [w.module for w, _, _ in again.pending] == ["next"]
    batch = Commit(str(tmp_path))
    again.add_to(batch)  # and the next commit puts the id into the journal
    batch.write()
    again.committed()
    third = ManagerState.load(checklist, now=102.0)
    assert "w-1.1" in third.replies and len(third.replies) == 1


@pytest.mark.parametrize(
    "entry", [[0, 1.0], [-3, 1.0], [2**22, 1.0], [2**31, 1.0], [4194001, "1.0"], [7], []]
)
def test_a_stopping_group_that_is_no_process_group_moves_the_state_file_aside(tmp_path, entry):
    # the manager sends SIGKILL to each group in supervision.stopping once its time
    # has passed: a group 0 read from a damaged file would be the manager's own
    state = json.loads(json.dumps(GOOD_STATE))
    state["supervision"]["stopping"] = [entry]
    state_file, read = _write_and_load(tmp_path, state)
    assert read.supervision.stopping == []
    assert read.supervision.groups_to_kill(2.0) == []
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


@pytest.mark.parametrize(
    "path",
    [
        ("applied", 0, 2),
        ("supervision", "stopping", 0, 1),
        ("supervision", "running", 0, "timeout"),
    ],
)
def test_a_time_too_large_for_a_float_moves_the_state_file_aside(tmp_path, path):
    # JSON reads 1e400 written out in digits as an int, which float() cannot take:
    # at start (the applied ids' times) or later in the loop, it would raise
    state = _replaced(GOOD_STATE, path, 10**400)
    state_file, read = _write_and_load(tmp_path, state)
    _use(read)
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True])
@pytest.mark.parametrize(
    "path",
    [
        ("applied", 0, 2),
        ("supervision", "retries", 0, "due"),
        ("supervision", "stopping", 0, 1),
        ("recent messages", 0, "time"),
    ],
)
def test_a_time_that_is_no_number_of_seconds_moves_the_state_file_aside(tmp_path, path, value):
    # JSON as Python reads it has NaN and Infinity: a retry due at NaN would never
    # be due, a process group to kill at Infinity never killed
    state = _replaced(GOOD_STATE, path, value)
    state_file, read = _write_and_load(tmp_path, state)
    assert read.supervision.retries == [] and read.recent == []
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


@pytest.mark.parametrize("applied", [["a-1.1", "{}", 1.5, 7], ["a-1.1", "{}"], ["a-1.1", 5, 1.5]])
def test_an_applied_id_other_than_id_reply_and_time_moves_the_state_file_aside(tmp_path, applied):
    # the ids of the state file's last write, taken into the reply journal at start
    state = _replaced(GOOD_STATE, ("applied", 0), applied)
    state_file, read = _write_and_load(tmp_path, state)
    assert len(read.replies) == 0
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


def test_the_error_line_of_a_state_file_moved_aside_says_which_field_is_wrong(tmp_path, caplog):
    import logging

    state = _replaced(GOOD_STATE, ("supervision", "running", 0, "pid"), 0)
    with caplog.at_level(logging.ERROR, logger="nowcast.state"):
        state_file, _ = _write_and_load(tmp_path, state)
    [error] = caplog.records
    [aside] = tmp_path.glob("*.unreadable-*")
    for part in (state_file, "supervision.running[0].pid must be a process id", aside):
        assert str(part) in error.getMessage()


@pytest.mark.parametrize("args", [[1], [None, "x"], "--x"])
def test_a_running_worker_whose_args_are_not_strings_moves_the_state_file_aside(tmp_path, args):
    # a watched worker's args make its command line when it is retried: a string
    # "--x" taken whole would become the args "-", "-", "x"
    state = _replaced(GOOD_STATE, ("supervision", "running", 0, "args"), args)
    state_file, read = _write_and_load(tmp_path, state)
    assert read.supervision.running == []
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


def test_ids_the_history_would_carry_go_whole_into_a_state_file_it_precedes(tmp_path):
    # with the history on, a message's reply is kept by its history row; a commit
    # that rewrites the state file puts those ids into its "applied" list as well
    from nowcast.next_worker import NextWorker

    checklist = str(tmp_path / "checklist.yaml")
    state = ManagerState.load(checklist, now=100.0)
    state.remember("w-1.1", '{"type": "ack", "id": "w-1.1"}', 100.0, True)
    state.pending.append((NextWorker("next"), 1, "t1"))
    batch = Commit(str(tmp_path))
    assert state.add_to(batch, history=True)
    batch.append = []  # killed after the renames, before the journal's append
    batch.write()
    again = ManagerState.load(checklist, now=101.0)
    assert list(tmp_path.glob("*.unreadable-*")) == []
    assert again.replies.get("w-1.1") == '{"type": "ack", "id": "w-1.1"}'
    assert [w.module for w, _, _ in again.pending] == ["next"]


def test_a_failed_commit_keeps_every_id_the_history_was_to_carry(tmp_path):
    # ids applied while a commit (whose history rows were to keep their replies)
    # is written, then that commit fails: all go into a later commit, in order
    path = str(tmp_path / "replies.jsonl")
    journal = ReplyJournal(path)
    journal.remember("a", "ra", 100.0, in_history=True)
    journal.remember("b", "rb", 100.0, in_history=True)
    journal.add_to(Commit(str(tmp_path)), history_carries=True)
    journal.remember("c", "rc", 101.0, in_history=True)
    journal.remember("d", "rd", 101.0, in_history=True)
    journal.failed()
    commit(journal, tmp_path)  # a commit whose history does not carry them
    again = ReplyJournal(path)
    again.load(now=102.0)
    assert list(again.replies) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("appended_since", [False, True])
@pytest.mark.parametrize("cut", [True, False])
def test_a_failed_commit_that_left_the_journal_alone_changes_nothing_of_it(
    tmp_path, cut, appended_since
):
    # a journal (whose last line a crash cut short, or not), then a commit without
    # lines of it (the state file alone: a worker's exit noted) that fails (disk
    # full): the next append starts with a line end if, and only if, the file still
    # ends in a cut line; else its first line is glued onto the cut one (and lost at
    # the next start), or a blank line makes the journal one nowcast did not write
    path = tmp_path / "replies.jsonl"
    path.write_bytes(b'["a", "ra", 1.0]\n' + (b'["b", "r' if cut else b""))
    journal = ReplyJournal(str(path))
    journal.load(now=2.0)
    if appended_since:
        journal.remember("c", "rc", 2.0)
        commit(journal, tmp_path)
    journal.add_to(Commit(str(tmp_path)))
    journal.failed()
    journal.remember("d", "rd", 3.0)
    commit(journal, tmp_path)
    again = ReplyJournal(str(path))
    again.load(now=4.0)
    assert list(tmp_path.glob("*.unreadable-*")) == []
    assert list(again.replies) == (["a", "c", "d"] if appended_since else ["a", "d"])


def test_a_failed_commit_keeps_every_id_for_the_next_one(tmp_path):
    # the ids of a commit that fails go into the next one, before those applied
    # while it was being written: none is lost from the journal
    path = str(tmp_path / "replies.jsonl")
    journal = ReplyJournal(path)
    journal.remember("a", "ra", 100.0)
    journal.remember("b", "rb", 100.0)
    journal.add_to(Commit(str(tmp_path)))
    journal.remember("c", "rc", 101.0)
    journal.remember("d", "rd", 101.0)
    journal.failed()
    commit(journal, tmp_path)
    again = ReplyJournal(path)
    again.load(now=102.0)
    assert list(again.replies) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "line", [b"not json", b"\x00\x00\x00", b"{", b'["x", 5]', b'[5, "r"]', b'["x", "r", 1.5, 2]']
)
def test_a_journal_line_no_crash_of_nowcast_left_moves_the_journal_aside(tmp_path, line):
    # only a line that starts as nowcast writes one (["...) and is cut short is a
    # crash's doing, skipped; anything else is a file nowcast did not write alone
    path = tmp_path / "replies.jsonl"
    content = b'["a", "ra"]\n' + line + b'\n["b", "rb"]\n'
    path.write_bytes(content)
    journal = ReplyJournal(str(path))
    journal.load()
    assert dict(journal.replies) == {"a": "ra", "b": "rb"}
    [aside] = tmp_path.glob("replies.jsonl.unreadable-*")
    assert aside.read_bytes() == content


@pytest.mark.parametrize("count", [0.5, -1, "1", None])
def test_a_race_group_waiting_for_other_than_a_count_moves_the_state_file_aside(tmp_path, count):
    # a group waiting {"a": 0.5} or {"a": -1} would never complete: what it holds
    # back would never be launched
    state = _replaced(GOOD_STATE, ("race groups", 0, "waiting", "a"), count)
    state_file, read = _write_and_load(tmp_path, state)
    assert read.races.groups == []
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


def test_whole_numbers_where_times_go_are_read_as_the_registry_gives_them(tmp_path):
    # `timeout: 600` in the registry is an int, and so is it in the state file
    state = _replaced(GOOD_STATE, ("supervision", "running", 0, "timeout"), 600)
    state = _replaced(state, ("supervision", "running", 0, "grace"), 5)
    state = _replaced(state, ("supervision", "stopping", 0, 1), 2)
    state_file, read = _write_and_load(tmp_path, state)
    assert list(tmp_path.glob("*.unreadable-*")) == []
    [running] = read.supervision.running
    assert (running.timeout, running.grace) == (600, 5)


@pytest.mark.parametrize("tries", [0, -2, 1.5, True])
def test_a_pending_launch_whose_try_is_not_1_or_more_moves_the_state_file_aside(tmp_path, tries):
    # the try number is counted against the registry's `retries` when the launch
    # fails: 0, a negative or a fraction is no try nowcast makes
    state = _replaced(GOOD_STATE, ("pending launches", 0, "try"), tries)
    state_file, read = _write_and_load(tmp_path, state)
    assert read.pending == []
    assert not state_file.exists()
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


@pytest.mark.parametrize("pid", [0, -1, -5, 2**22, 2**31, 2**64, None])
def test_a_running_worker_whose_pid_no_process_has_moves_the_state_file_aside(tmp_path, pid):
    # the manager looks at each watched pid with os.kill(pid, 0), which takes
    # no pid past a C int (OverflowError), 0 would be its own process group and -1
    # every process it may signal (a negative pid, a group); only a batch job has none
    state = _replaced(GOOD_STATE, ("supervision", "running", 0, "pid"), pid)
    state_file, read = _write_and_load(tmp_path, state)
    _use(read)
    assert read.supervision.running == []
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


def test_a_watched_batch_job_is_read_back(tmp_path):
    # a batch job is followed by its job id and has no pid: a manager restarted
    # while one runs goes on with the state file its predecessor wrote
    from nowcast.next_worker import NextWorker
    from nowcast.supervision import Launched

    checklist = str(tmp_path / "checklist.yaml")
    state = ManagerState.load(checklist)
    job = {"id": "17", "state": "RUNNING"}
    state.supervision.running.append(Launched("w.model", [], "cluster", None, 1.0, job=job))
    state.pending.append((NextWorker("w.next"), 1, "t1"))
    batch = Commit(str(tmp_path))
    assert state.add_to(batch)
    batch.write()
    again = ManagerState.load(checklist)
    assert list(tmp_path.glob("*.unreadable-*")) == []
    assert [(w.pid, w.job) for w in again.supervision.running] == [(None, job)]
    assert [w.module for w, _, _ in again.pending] == ["w.next"]


def test_a_pending_launch_without_a_try_is_its_first(tmp_path):
    state = json.loads(json.dumps(GOOD_STATE))
    del state["pending launches"][0]["try"]
    state_file, read = _write_and_load(tmp_path, state)
    assert list(tmp_path.glob("*.unreadable-*")) == []
    assert [(w.module, tries) for w, tries, _ in read.pending] == [("w.d", 1)]


@pytest.mark.parametrize(
    "message",
    [
        5,
        None,
        ["a"],
        {"source": "a", "type": "success"},
        {"time": "noon", "source": "a", "type": "success"},
        {"time": 1.5, "type": "success"},
        {"time": 1.5, "source": "a", "type": 7},
    ],
)
def test_a_recent_message_that_is_not_an_object_moves_the_state_file_aside(tmp_path, message):
    # nowcast status shows them, reading each one's time, source and type
    state = _replaced(GOOD_STATE, ("recent messages", 0), message)
    state_file, read = _write_and_load(tmp_path, state)
    assert read.recent == []
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


@pytest.mark.parametrize(
    "key, value",
    [
        ("history commit", -1),
        ("history commit", "3"),
        ("history commit", True),
        ("history rows", [[], [], []]),
        ("history rows", [[], [], [], [], "x"]),
        ("history rows", [[], [], [], [], [5]]),
    ],
)
def test_history_rows_of_the_wrong_shape_move_the_state_file_aside(tmp_path, key, value):
    # rows the next manager would write into the history again, with their number
    state = json.loads(json.dumps(GOOD_STATE))
    state[key] = value
    _, read = _write_and_load(tmp_path, state)
    assert read.history_rows == [] and read.history_commit == 0
    assert len(list(tmp_path.glob("*.unreadable-*"))) == 1


def test_history_rows_are_read_back_with_their_number(tmp_path):
    state = json.loads(json.dumps(GOOD_STATE))
    state["history commit"] = 7
    state["history rows"] = [[], [], [], [["m", 1.0, "w", "success", None, "ack", None, "a"]], []]
    _, read = _write_and_load(tmp_path, state)
    assert read.history_commit == 7
    assert read.history_rows[3] == [["m", 1.0, "w", "success", None, "ack", None, "a"]]
