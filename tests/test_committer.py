"""nowcast.committer: the manager's files written together, appends last."""

from __future__ import annotations

import os

import pytest
import yaml

from nowcast.checklist import Checklist
from nowcast.committer import Commit, Committer, OpenFiles


def commit_for(tmp_path, checklist: Checklist, state: bytes, line: bytes) -> Commit:
    commit = Commit(str(tmp_path))
    commit.replace.append((str(tmp_path / "checklist.yaml"), checklist.to_yaml()))
    commit.replace.append((str(tmp_path / "state.json"), state))
    commit.append.append((str(tmp_path / "replies.jsonl"), line))
    return commit


@pytest.mark.timeout(10)
def test_a_commit_replaces_files_whole_appends_and_leaves_no_temporary(tmp_path):
    committer = Committer()
    try:
        for n in range(3):
            committer.submit(commit_for(tmp_path, Checklist({"a": {"n": n}}), b"{}", b"x\n"))
            assert committer.wait()
        assert yaml.safe_load((tmp_path / "checklist.yaml").read_text()) == {"a": {"n": 2}}
        assert (tmp_path / "replies.jsonl").read_bytes() == b"x\n" * 3
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "checklist.yaml",
            "replies.jsonl",
            "state.json",
        ]
    finally:
        committer.close()


@pytest.mark.timeout(10)
def test_a_failed_commit_raises_changes_no_file_and_appends_nothing(tmp_path):
    committer = Committer()
    try:
        committer.submit(commit_for(tmp_path, Checklist({"a": 1}), b"old", b"1\n"))
        committer.wait()
        # the state file's temporary name taken by a directory: that write fails
        os.mkdir(tmp_path / f".state.json.{os.getpid()}.tmp")
        committer.submit(commit_for(tmp_path, Checklist({"a": 2}), b"new", b"2\n"))
        with pytest.raises(IsADirectoryError):
            committer.wait()
        assert yaml.safe_load((tmp_path / "checklist.yaml").read_text()) == {"a": 1}
        assert (tmp_path / "state.json").read_bytes() == b"old"
        assert (tmp_path / "replies.jsonl").read_bytes() == b"1\n"
        assert not list(tmp_path.glob(".checklist.yaml.*"))  # its temporary is removed
    finally:
        committer.close()


def test_a_commit_with_only_replaced_or_only_appended_files_is_written(tmp_path):
    assert not Commit(str(tmp_path))
    only_replace = Commit(str(tmp_path))
    only_replace.replace.append((str(tmp_path / "state.json"), b"{}"))
    only_append = Commit(str(tmp_path))
    only_append.append.append((str(tmp_path / "replies.jsonl"), b"x\n"))
    assert only_replace  # the manager skips a commit that is false
    assert only_append


@pytest.mark.timeout(10)
def test_finish_never_blocks_the_manager(tmp_path):
    committer = Committer()
    try:
        assert not committer.wait()  # nothing handed over: nothing to wait for
        assert not committer.finish()  # nothing done: answers at once
        committer.submit(commit_for(tmp_path, Checklist({"a": 1}), b"{}", b"x\n"))
        assert committer.wait()
        assert not committer.busy
        assert not committer.finish()  # still answers at once after a wait
        assert not committer.wait()
    finally:
        committer.close()


@pytest.mark.timeout(30)
def test_a_process_that_never_closes_its_committer_still_exits():
    # the manager must not hang at exit (supervisord could not restart it) because
    # its writer thread is still waiting for work
    import subprocess
    import sys

    code = "from nowcast.committer import Committer\nCommitter()\nprint('done')\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"


def test_replaced_files_have_their_directory_synced_so_the_renames_last(tmp_path, monkeypatch):
    # a rename is durable only once its directory is flushed; a power cut cannot be
    # made here, so the calls are counted (and still made)
    from nowcast import committer as module

    synced = []
    real = module.fsync_dir

    def counting(directory):
        synced.append(directory)
        real(directory)

    monkeypatch.setattr(module, "fsync_dir", counting)
    commit_for(tmp_path, Checklist({"a": 1}), b"{}", b"x\n").write()
    assert synced == [str(tmp_path)]
    only_append = Commit(str(tmp_path))
    only_append.append.append((str(tmp_path / "replies.jsonl"), b"y\n"))
    only_append.write()
    assert synced == [str(tmp_path)]  # an append is flushed with the file itself


@pytest.mark.timeout(10)
def test_appends_after_a_commit_replaced_the_file_go_to_the_new_file(tmp_path):
    # the committer keeps the appended file open between commits; a commit that
    # replaces it (the reply journal rewritten shorter) must not leave later
    # appends going to the old, unlinked file
    journal = str(tmp_path / "replies.jsonl")
    committer = Committer()
    try:
        for replace, line in ((None, b"a\n"), (b"r\n", b"b\n"), (None, b"c\n")):
            commit = Commit(str(tmp_path))
            if replace is not None:
                commit.replace.append((journal, replace))
            commit.append.append((journal, line))
            committer.submit(commit)
            assert committer.wait()
        assert (tmp_path / "replies.jsonl").read_bytes() == b"r\nb\nc\n"
    finally:
        committer.close()


class _SeesFiles:
    """A history whose commit (finish) notes what the replaced files hold then."""

    def __init__(self, *paths):
        self.paths, self.seen = paths, None

    def __bool__(self):
        return True

    def prepare(self):
        pass

    def finish(self):
        self.seen = [p.read_bytes() for p in self.paths]


def test_the_history_is_written_after_the_checklist_and_the_state_file(tmp_path):
    checklist, state = tmp_path / "checklist", tmp_path / "state"
    checklist.write_bytes(b"old")
    state.write_bytes(b"old")
    commit = Commit(str(tmp_path))
    commit.replace += [(str(checklist), b"new"), (str(state), b"new")]
    commit.history = _SeesFiles(checklist, state)
    commit.write(OpenFiles())
    assert commit.history.seen == [b"new", b"new"]
    assert checklist.read_bytes() == state.read_bytes() == b"new"


class _NotesOrder:
    """A history that notes its steps in a list of events."""

    def __init__(self, events):
        self.events = events

    def __bool__(self):
        return True

    def prepare(self):
        self.events.append("rows")

    def finish(self):
        self.events.append("history")


def test_the_renames_are_synced_before_the_history(tmp_path, monkeypatch):
    # the history must not reach the disk before the files it describes: their
    # renames are made durable (their directory synced) before the history's write
    from nowcast import committer as module

    events: list[str] = []
    real = module.fsync_dir

    def noting(directory):
        events.append("sync")
        real(directory)

    monkeypatch.setattr(module, "fsync_dir", noting)
    commit = Commit(str(tmp_path))
    commit.replace += [(str(tmp_path / "checklist"), b"c"), (str(tmp_path / "state"), b"s")]
    commit.history = _NotesOrder(events)
    commit.write()
    assert events == ["rows", "sync", "history"]


@pytest.mark.timeout(10)
def test_a_closed_committer_leaves_no_descriptor_open(tmp_path):
    # the journal and the directory stay open between commits; closing the
    # committer closes them
    def open_fds():
        return set(os.listdir("/proc/self/fd"))

    before = open_fds()
    committer = Committer()
    commit = commit_for(tmp_path, Checklist({"a": 1}), b"{}", b"x\n")
    committer.submit(commit)
    assert committer.wait()
    assert len(open_fds() - before) > 2  # the pipe, and the files kept open
    committer.close()
    assert open_fds() - before == set()


def test_an_appended_file_is_created_readable_as_the_replaced_ones(tmp_path):
    old = os.umask(0o022)
    try:
        files = OpenFiles()
        files.append(str(tmp_path / "replies.jsonl"), b"x\n")
        files.close()
        commit = Commit(str(tmp_path))
        commit.replace.append((str(tmp_path / "state"), b"s"))
        commit.write()
    finally:
        os.umask(old)
    modes = {os.stat(tmp_path / name).st_mode & 0o777 for name in ("replies.jsonl", "state")}
    assert modes == {0o644}


def _rows(tmp_path, ids):
    """A real history's rows: messages with ``ids``, on a fresh database."""
    from nowcast import history
    from nowcast.recorder import _INSERT_MESSAGE, Rows, _no_rows

    conn = history.open_for_writing(str(tmp_path / "history.sqlite"))
    rows = _no_rows()
    rows[_INSERT_MESSAGE] = [(i, 1.0, "w", "success", None, "ack", None, "a") for i in ids]
    return conn, Rows(conn, rows)


def test_rows_made_before_the_files_are_committed_at_the_historys_place(tmp_path):
    # the rows are made before the files are written, and committed after their
    # renames: a reader sees none of them until then
    from nowcast import history

    checklist, state = tmp_path / "checklist", tmp_path / "state"
    checklist.write_bytes(b"old")
    state.write_bytes(b"old")
    conn, made = _rows(tmp_path, ["m1", "m2"])
    reader = history.open_readonly(str(tmp_path / "history.sqlite"))
    seen = []

    class Watched(type(made)):
        def finish(self):
            seen.append((checklist.read_bytes(), state.read_bytes()))
            assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
            super().finish()

    rows = Watched(conn, made.rows)
    commit = Commit(str(tmp_path))
    commit.replace += [(str(checklist), b"new"), (str(state), b"new")]
    commit.history = rows
    commit.write(OpenFiles())
    assert seen == [(b"new", b"new")]
    assert [i for (i,) in reader.execute("SELECT id FROM messages")] == ["m1", "m2"]


def test_a_commit_that_fails_before_the_history_leaves_no_transaction_open(tmp_path):
    # the history's transaction was begun; a file that cannot be written fails
    # the commit, and the transaction is rolled back (the database is not left
    # locked, and none of its rows are written)
    import sqlite3

    conn, rows = _rows(tmp_path, ["m1"])
    commit = Commit(str(tmp_path))
    commit.replace.append((str(tmp_path / "no such directory" / "checklist"), b"new"))
    commit.history = rows
    with pytest.raises(OSError):
        commit.write(OpenFiles())
    assert not conn.in_transaction
    other = sqlite3.connect(str(tmp_path / "history.sqlite"), timeout=0.1)
    other.execute("BEGIN IMMEDIATE")  # not locked
    other.execute("ROLLBACK")
    assert other.execute("SELECT count(*) FROM messages").fetchone() == (0,)


def test_rows_that_cannot_be_made_fail_the_commit_and_are_rolled_back(tmp_path):
    conn, rows = _rows(tmp_path, ["m1"])
    conn.execute("DROP TABLE messages")
    commit = Commit(str(tmp_path))
    commit.replace.append((str(tmp_path / "checklist"), b"new"))
    commit.history = rows
    with pytest.raises(OSError, match="history database"):
        commit.write(OpenFiles())
    assert not conn.in_transaction
    assert not (tmp_path / "checklist").exists()  # failed before the files were written


# the history's checkpoints: made on the committer's thread, off the commits' path


def _history_commit(tmp_path, conn, first: int, count: int = 20) -> Commit:
    """A commit of ``count`` messages' rows (ids from ``first`` on) to ``conn``."""
    from nowcast.recorder import _INSERT_MESSAGE, Rows, _no_rows

    rows = _no_rows()
    rows[_INSERT_MESSAGE] = [
        (f"message-{i}", float(i), "w", "success", '{"x": "' + "p" * 200 + '"}', "ack", None, "a")
        for i in range(first, first + count)
    ]
    commit = Commit(str(tmp_path))
    commit.replace.append((str(tmp_path / "checklist"), b"new"))
    commit.history = Rows(conn, rows)
    return commit


def _done(committer: Committer, timeout: float) -> bool:
    """Whether the commit handed over is done within ``timeout`` seconds."""
    import select

    return bool(select.select([committer.fileno()], [], [], timeout)[0]) and committer.finish()


@pytest.mark.timeout(10)
def test_a_checkpoint_due_after_a_commit_is_made_after_its_done_signal(tmp_path):
    # the commit that makes a checkpoint due is done (its replies may go) while
    # the checkpoint has not even begun; the next commit waits for it
    import threading

    from nowcast import history

    conn = history.open_for_writing(str(tmp_path / "history.sqlite"))
    started, release = threading.Event(), threading.Event()

    class Held(history.Checkpoints):
        def checkpoint(self):
            started.set()
            release.wait(5)
            super().checkpoint()

    checkpoints = Held(conn, every=2, idle=60)
    committer = Committer(checkpoints)
    try:
        committer.submit(_history_commit(tmp_path, conn, 0))
        assert _done(committer, 5)
        assert not started.is_set()  # one commit of two
        committer.submit(_history_commit(tmp_path, conn, 20))
        assert _done(committer, 5), "the commit waited for its checkpoint"
        assert started.wait(5)
        committer.submit(_history_commit(tmp_path, conn, 40))
        assert not _done(committer, 0.2)  # behind the checkpoint
        release.set()
        assert _done(committer, 5)
        assert checkpoints.made == 1
    finally:
        release.set()
        committer.close()
    assert conn.execute("SELECT count(*) FROM messages").fetchone() == (60,)
    assert checkpoints.made == 2  # and one at the close, for the commit after it


def _pages(path) -> int:
    return os.path.getsize(path) // 4096 if os.path.exists(path) else 0


@pytest.mark.timeout(20)
def test_no_commit_checkpoints_the_log_before_it_is_large_the_close_does(tmp_path):
    # SQLite would checkpoint inside the commit that takes its log past 1,000
    # pages; the manager's connection leaves that to the committer's thread
    # below HISTORY_LOG_MAX_PAGES, so the database file does not change
    from nowcast import defaults, history

    path = str(tmp_path / "history.sqlite")
    conn = history.open_for_writing(path)
    checkpoints = history.Checkpoints(conn, every=10**6, idle=60)
    size = os.path.getsize(path)
    committer = Committer(checkpoints)
    try:
        n = 0
        while _pages(path + "-wal") <= 1200:
            committer.submit(_history_commit(tmp_path, conn, n))
            assert _done(committer, 5)
            n += 20
        assert os.path.getsize(path) == size  # every page still in the log only
        assert _pages(path + "-wal") < defaults.HISTORY_LOG_MAX_PAGES
        assert checkpoints.made == 0
    finally:
        committer.close()
    assert checkpoints.made == 1 and os.path.getsize(path) > size  # the close moved them
    assert os.path.getsize(path + "-wal") == 0  # and cut the log
    conn.close()
    assert history.open_readonly(path).execute("SELECT count(*) FROM messages").fetchone()[0] == n


@pytest.mark.timeout(10)
def test_the_log_is_checkpointed_when_no_commit_comes_for_a_while(tmp_path):
    from conftest import wait_for

    from nowcast import history

    path = str(tmp_path / "history.sqlite")
    conn = history.open_for_writing(path)
    checkpoints = history.Checkpoints(conn, every=10**6, idle=0.3)
    committer = Committer(checkpoints)
    try:
        size = os.path.getsize(path)
        committer.submit(_history_commit(tmp_path, conn, 0))
        assert _done(committer, 5)
        assert os.path.getsize(path) == size
        wait_for(lambda: os.path.getsize(path) > size, timeout=5, what="an idle checkpoint")
        assert checkpoints.made == 1
        assert checkpoints.wait() is None  # nothing new in the log: no timer for another
    finally:
        committer.close()
    assert checkpoints.made == 2  # the close's, which cuts the log
    assert os.path.getsize(path + "-wal") == 0


@pytest.mark.timeout(10)
def test_only_a_commit_that_wrote_rows_counts_towards_a_checkpoint(tmp_path):
    class Counting:  # the checkpoints' interface, counting what the committer says
        def __init__(self) -> None:
            self.committed_calls = 0

        def committed(self) -> bool:
            self.committed_calls += 1
            return False

        def wait(self) -> None:
            return None

        def last(self) -> None:
            pass

    class Rows:  # rows for the history: truthy, and failing at prepare when told to
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def __bool__(self) -> bool:
            return True

        def prepare(self) -> None:
            if self.fail:
                raise OSError("history database: disk I/O error")

        def finish(self) -> None:
            pass

        def abort(self) -> None:
            pass

    checkpoints = Counting()
    committer = Committer(checkpoints)
    try:
        committer.submit(commit_for(tmp_path, Checklist({"a": 1}), b"{}", b"x\n"))  # no rows
        assert committer.wait()
        failing = commit_for(tmp_path, Checklist({"a": 2}), b"{}", b"x\n")
        failing.history = Rows(fail=True)  # its rows never reach the log
        committer.submit(failing)
        with pytest.raises(OSError, match="disk I/O error"):
            committer.wait()
        written = commit_for(tmp_path, Checklist({"a": 3}), b"{}", b"x\n")
        written.history = Rows(fail=False)
        committer.submit(written)
        assert committer.wait()
    finally:
        committer.close()  # the thread counts a commit after its done signal: join it first
    assert checkpoints.committed_calls == 1  # the last commit alone
