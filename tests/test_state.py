"""nowcast.state: the reply journal and the manager's state, written through real
commits to real files."""

from __future__ import annotations

import json

from nowcast import defaults
from nowcast.committer import Commit
from nowcast.state import ManagerState, ReplyJournal


def commit(journal: ReplyJournal, directory) -> None:
    """Write what the journal has to add, as the manager's committer does."""
    batch = Commit(str(directory))
    journal.add_to(batch)
    batch.write()
    journal.committed()


def test_the_journal_is_appended_to_and_rewritten_shorter_only_when_it_has_doubled(tmp_path):
    path = tmp_path / "replies.jsonl"
    journal = ReplyJournal(str(path), remembered=3)
    inodes = []
    for n in range(20):
        journal.remember(f"id-{n}", f"reply {n}")
        commit(journal, tmp_path)
        lines = path.read_text().splitlines()
        assert len(lines) <= 2 * 3  # bounded: never more than twice what is remembered
        assert json.loads(lines[-1]) == [f"id-{n}", f"reply {n}"]
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
        assert len(path.read_text().splitlines()) <= 2 * 3 + 4
    assert list(journal.replies) == ["id-5-1", "id-5-2", "id-5-3"]


def test_exactly_as_many_ids_as_configured_are_remembered(tmp_path):
    journal = ReplyJournal(str(tmp_path / "replies.jsonl"), remembered=3)
    for n in range(3):
        journal.remember(f"id-{n}", "ack")
    assert list(journal.replies) == ["id-0", "id-1", "id-2"]
    journal.remember("id-3", "ack")
    assert list(journal.replies) == ["id-1", "id-2", "id-3"]


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


def test_the_last_few_messages_are_kept_newest_last(tmp_path):
    state = ManagerState(ReplyJournal(str(tmp_path / "replies.jsonl")))
    for n in range(defaults.RECENT_MESSAGES + 5):
        state.note_message(f"w{n}", "success", float(n))
    assert [m["source"] for m in state.recent] == [
        f"w{n}" for n in range(5, defaults.RECENT_MESSAGES + 5)
    ]
