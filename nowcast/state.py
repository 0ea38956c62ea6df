"""The manager's own state, kept in two files beside the checklist file.

They hold what the checklist must not:

- ``<checklist file>.manager-state.json``: the race-condition groups still waiting,
  the workers decided on but not yet launched, the workers launched and still
  watched, retries due, and the last few messages (for ``nowcast.status``).
  Rewritten atomically whenever it changes.
- ``<checklist file>.manager-replies.jsonl``: the ids of recently applied messages
  with the replies they got, so a re-sent message is answered, not applied twice.
  Appended to (a few bytes per message) and rewritten, shorter, when it has grown
  to twice what is remembered.

Both are on disk, with the checklist, before any reply to the messages that
changed them: the manager adds what changed to a ``Commit`` and replies when the
committer has written it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict

import attrs

from nowcast import defaults
from nowcast.committer import Commit
from nowcast.next_worker import NextWorker
from nowcast.race import RaceGroups, worker_from_plain, worker_to_plain
from nowcast.supervision import Supervision

logger = logging.getLogger(__name__)

FORMAT = 2


def state_path(checklist_file: str) -> str:
    """The state file that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-state.json"


def replies_path(checklist_file: str) -> str:
    """The reply journal that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-replies.jsonl"


class ReplyJournal:
    """The replies to recently applied messages, by message id, on disk as one
    JSON line per message."""

    def __init__(self, path: str, remembered: int = defaults.REMEMBERED_IDS) -> None:
        self.path = path
        self.remembered = remembered
        self.replies: OrderedDict[str, str] = OrderedDict()
        self._unwritten: list[tuple[str, str]] = []  # (id, journal line), not yet committed
        self._in_flight: list[tuple[str, str]] = []  # in the commit being written
        self._lines = 0
        # the file ends in a line cut short (a power cut during an append): the next
        # append starts with a line end, lest its first line be glued onto that one
        self._torn = False
        self._torn_before = False  # as it was before the commit being written

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self.replies

    def __getitem__(self, msg_id: str) -> str:
        return self.replies[msg_id]

    def remember(self, msg_id: str, reply: str) -> None:
        """Keep the reply to ``msg_id``, forgetting the oldest beyond the limit."""
        self.replies[msg_id] = reply
        self._unwritten.append((msg_id, _line(msg_id, reply)))
        while len(self.replies) > self.remembered:
            self.replies.popitem(last=False)

    def load(self) -> None:
        """Read the journal; a line cut short by a crash is ignored (its reply was
        never sent)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return
        for number, line in enumerate(lines, 1):
            try:
                msg_id, reply = json.loads(line)
            except ValueError:
                logger.warning(
                    "%s: line %d is incomplete or unreadable; ignored", self.path, number
                )
                continue
            self.replies[msg_id] = reply
            while len(self.replies) > self.remembered:
                self.replies.popitem(last=False)
        self._lines = len(lines)
        self._torn = bool(lines) and not lines[-1].endswith("\n")

    def add_to(self, commit: Commit) -> None:
        """Add what was remembered since the last commit to ``commit``: appended,
        or, when the file has grown to twice what is remembered, after rewriting it
        with the older ids still remembered."""
        if not self._unwritten:
            return
        new = "".join(line for _, line in self._unwritten).encode("utf-8")
        if self._lines + len(self._unwritten) > 2 * self.remembered:
            fresh = {msg_id for msg_id, _ in self._unwritten}
            kept = [_line(k, v) for k, v in self.replies.items() if k not in fresh]
            commit.replace.append((self.path, "".join(kept).encode("utf-8")))
            self._lines = len(kept)
        elif self._torn:
            new = b"\n" + new
        self._torn_before, self._torn = self._torn, False
        commit.append.append((self.path, new))
        self._lines += len(self._unwritten)
        self._in_flight, self._unwritten = self._unwritten, []

    def committed(self) -> None:
        self._in_flight = []

    def failed(self) -> None:
        """The commit was not written: its lines go into the next one."""
        self._unwritten[:0] = self._in_flight
        self._in_flight = []
        self._torn = self._torn_before


def _line(msg_id: str, reply: str) -> str:
    return json.dumps([msg_id, reply], ensure_ascii=False) + "\n"


@attrs.define
class ManagerState:
    """Everything the manager must remember across a restart besides the checklist."""

    replies: ReplyJournal
    races: RaceGroups = attrs.field(factory=RaceGroups)
    pending: list[tuple[NextWorker, int]] = attrs.field(factory=list)  # (worker, try)
    supervision: Supervision = attrs.field(factory=Supervision)
    recent: list[dict] = attrs.field(factory=list)
    path: str = ""
    _written: str = attrs.field(default="", repr=False, eq=False)

    def note_message(self, source: str, msg_type: str, when: float) -> None:
        """Keep the last few messages, newest last."""
        self.recent.append({"time": when, "source": source, "type": msg_type})
        del self.recent[: -defaults.RECENT_MESSAGES]

    def remember(self, msg_id: str, reply: str) -> None:
        self.replies.remember(msg_id, reply)

    def _durable_json(self) -> str:
        """The part of the state that must survive a restart exactly."""
        return json.dumps(
            {
                "race groups": self.races.to_plain(),
                "pending launches": [
                    {**worker_to_plain(w), "try": tries} for w, tries in self.pending
                ],
                "supervision": self.supervision.to_plain(),
            },
            ensure_ascii=False,
        )

    def add_to(self, commit: Commit) -> None:
        """Add to ``commit`` what changed since the last one: the state file when
        its durable part changed, and the new lines of the reply journal."""
        durable = self._durable_json()
        if durable != self._written:
            text = json.dumps(
                {"format": FORMAT, "recent messages": self.recent}, ensure_ascii=False
            )
            commit.replace.append((self.path, f"{text[:-1]}, {durable[1:]}".encode()))
            self._written = durable
        self.replies.add_to(commit)

    def committed(self) -> None:
        self.replies.committed()

    def failed(self) -> None:
        """The commit was not written: the next one writes everything again."""
        self._written = ""
        self.replies.failed()

    @classmethod
    def load(cls, checklist_file: str, remembered: int = defaults.REMEMBERED_IDS) -> ManagerState:
        """Read the state files; absent ones give a fresh state, an unreadable
        state file is moved aside with a log line."""
        journal = ReplyJournal(replies_path(checklist_file), remembered)
        journal.load()
        path = state_path(checklist_file)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            state = cls(
                journal,
                RaceGroups.from_plain(data.get("race groups", [])),
                [(worker_from_plain(w), w.get("try", 1)) for w in data.get("pending launches", [])],
                Supervision.from_plain(data.get("supervision", {})),
                list(data.get("recent messages", [])),
                path,
            )
        except FileNotFoundError:
            return cls(journal, path=path)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            aside = f"{path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}"
            os.replace(path, aside)
            logger.error(
                "manager state file %s cannot be read (%s); moved it to %s", path, e, aside
            )
            return cls(journal, path=path)
        state._written = state._durable_json()
        logger.info(
            "manager state read from %s: %d remembered message ids, %d race groups waiting, "
            "%d launches pending, %d launched workers watched",
            path,
            len(journal.replies),
            len(state.races.groups),
            len(state.pending),
            len(state.supervision.running),
        )
        return state
