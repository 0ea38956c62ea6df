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
from json.encoder import encode_basestring
from typing import Any

import attrs

from nowcast import defaults
from nowcast.committer import Commit
from nowcast.next_worker import NextWorker
from nowcast.race import RaceGroups, worker_from_plain, worker_to_plain
from nowcast.remembered import RememberedIds
from nowcast.supervision import Launched, Retry, Supervision

logger = logging.getLogger(__name__)

FORMAT = 2


def new_token() -> str:
    """A launch token: given to one launch of a worker, in its environment
    (``NOWCAST_LAUNCH``), to tell that launch apart from any other."""
    return os.urandom(8).hex()


def state_path(checklist_file: str) -> str:
    """The state file that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-state.json"


def replies_path(checklist_file: str) -> str:
    """The reply journal that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-replies.jsonl"


class ReplyJournal:
    """The replies to recently applied messages, by message id, on disk as one
    JSON line per message: ``[id, reply, time applied]``.

    An id is kept for ``keep_for`` seconds, longer than any worker goes on
    re-sending (``zmq: give up after``), so a re-sent message is never applied
    twice however fast messages come; at most ``remembered`` ids are kept, to
    bound memory (the oldest go first, with a warning). In memory the ids are
    kept compactly (``nowcast.remembered``).
    """

    def __init__(
        self,
        path: str,
        keep_for: float = defaults.GIVE_UP_AFTER + defaults.REMEMBER_MARGIN,
        remembered: int = defaults.REMEMBERED_IDS_MAX,
    ) -> None:
        self.path = path
        self._ids = RememberedIds(keep_for, remembered)
        self._warned_full = False
        self._unwritten: list[tuple[str, str]] = []  # (id, journal line), not yet committed
        self._in_flight: list[tuple[str, str]] = []  # in the commit being written
        # (id, reply, time): ids whose reply the history database keeps (its rows
        # of their messages hold it), not yet committed, and in the commit
        self._carried: list[tuple[str, str, float]] = []
        self._carried_in_flight: list[tuple[str, str, float]] = []
        self._lines = 0
        # the file ends in a line cut short (a power cut during an append): the next
        # append starts with a line end, lest its first line be glued onto that one
        self._torn = False
        # the file was moved aside: the next commit writes the remembered ids afresh
        self._rewrite = False
        # (torn, rewrite) for the next commit should the one being written fail,
        # or None when that one leaves the file alone
        self._undo: tuple[bool, bool] | None = None

    @property
    def keep_for(self) -> float:
        return self._ids.keep_for

    @keep_for.setter
    def keep_for(self, seconds: float) -> None:
        self._ids.keep_for = seconds

    @property
    def remembered(self) -> int:
        return self._ids.most

    @property
    def replies(self) -> dict[str, str]:
        """Every id remembered with its reply, oldest first (a copy: for looking at)."""
        return {msg_id: reply for msg_id, reply, _ in self._ids.items()}

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def __getitem__(self, msg_id: str) -> str:
        reply = self._ids.get(msg_id)
        if reply is None:
            raise KeyError(msg_id)
        return reply

    def get(self, msg_id: str) -> str | None:
        """The reply ``msg_id`` got, or None when it is not remembered."""
        return self._ids.get(msg_id)

    def __len__(self) -> int:
        return len(self._ids)

    def remember(
        self, msg_id: str, reply: str, now: float | None = None, in_history: bool = False
    ) -> None:
        """Keep the reply to ``msg_id``; forget the ids older than ``keep_for``.
        ``in_history``: the history database's row of the message keeps the reply
        too, so the journal need not (see ``add_to``)."""
        now = time.time() if now is None else now
        self._ids.add(msg_id, reply, now)
        if in_history:
            self._carried.append((msg_id, reply, now))
        else:
            self._unwritten.append((msg_id, _line(msg_id, reply, now)))
        self.forget(now)

    def unwritten_lines(self) -> list[str]:
        """The journal lines (without their line ends) not yet in a commit, the
        ids the history would carry included."""
        lines = [line[:-1] for _, line in self._unwritten]
        lines += [_line(msg_id, reply, when)[:-1] for msg_id, reply, when in self._carried]
        return lines

    def merge(self, applied: list[tuple[str, str, float]], now: float) -> int:
        """Remember ids (``(id, reply, time applied)``, oldest first) that the
        history database keeps; return how many were not remembered already."""
        new = 0
        for msg_id, reply, when in applied:
            if msg_id not in self._ids:
                self._ids.add(msg_id, reply, when)
                new += 1
        self.forget(now)
        return new

    def recover(self, msg_id: str, reply: str, when: float) -> bool:
        """Remember an id the state file vouches for and the journal lacks (a crash
        came between the two); it goes into the journal with the next commit."""
        if msg_id in self._ids:
            return False
        self.remember(msg_id, reply, when)
        return True

    def forget(self, now: float) -> None:
        """Forget the ids applied more than ``keep_for`` seconds before ``now``,
        and the oldest beyond ``remembered``."""
        ids = self._ids
        ids.forget_older(now - ids.keep_for)
        if ids.forget_beyond_most() and not self._warned_full:
            self._warned_full = True
            logger.warning(
                "more than %d message ids applied within %g s; forgetting the oldest "
                "early: a worker re-sending one of those would have it applied again",
                ids.most,
                ids.keep_for,
            )

    def load(self, now: float | None = None) -> None:
        """Read the journal. A line cut short by a crash is ignored (its reply was
        never sent). Any other line that is not ``[id, reply]`` (not written by
        nowcast) makes the file unusable as it is: it is moved aside with one ERROR
        line, the readable lines are kept, and the next commit writes them to a
        fresh journal. Lines without a time (an older format) count as applied
        ``now``."""
        now = time.time() if now is None else now
        try:
            with open(self.path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return
        except OSError as e:
            _set_aside(self.path, "reply journal", e)
            return
        torn, lines = lines[-1], lines[:-1]  # after the last newline: b"" or a torn line
        bad, cut = [], 0
        for number, line in enumerate(lines, 1):
            try:
                msg_id, reply, *when = json.loads(line)
                if not (isinstance(msg_id, str) and isinstance(reply, str)) or len(when) > 1:
                    raise TypeError("expected [id, reply, time]: two strings and a number")
                when = float(when[0]) if when else now
            except Exception as e:  # any bytes, any JSON
                if line.startswith(b'["') and isinstance(e, ValueError):
                    cut += 1  # the start of a line a crash cut short; the next starts afresh
                else:
                    bad.append(f"line {number}: {type(e).__name__}")
                continue
            if msg_id not in self._ids:
                self._ids.add(msg_id, reply, when)
        self.forget(now)
        if torn or cut:
            logger.warning(
                "%s: %d line(s) cut short by a crash while they were written; ignored",
                self.path,
                cut + bool(torn),
            )
        if bad:
            _set_aside(
                self.path,
                "reply journal",
                f"{len(bad)} line(s) nowcast did not write, the first {bad[0]}; "
                f"its {len(self._ids)} readable line(s) are kept",
            )
            self._rewrite = True
            return
        self._lines = len(lines) + bool(torn)
        self._torn = bool(torn)

    def add_to(self, commit: Commit, history_carries: bool = False) -> None:
        """Add what was remembered since the last commit to ``commit``: appended,
        or, when the file has grown to twice what is remembered, after rewriting it
        with the older ids still remembered. ``history_carries``: the commit's
        history rows keep the replies of the ids remembered ``in_history``, which
        are then not written here; otherwise they are."""
        self._undo = None
        if self._carried:
            if history_carries:
                self._carried_in_flight, self._carried = self._carried, []
            else:
                self._unwritten += [(i, _line(i, r, t)) for i, r, t in self._carried]
                self._carried = []
        if not (self._unwritten or self._rewrite):
            return
        new = "".join(line for _, line in self._unwritten).encode("utf-8")
        rewrite = self._rewrite or self._lines + len(self._unwritten) > 2 * max(len(self._ids), 1)
        self._undo = (self._torn, rewrite)
        if rewrite:
            fresh = {msg_id for msg_id, _ in self._unwritten}
            kept = [_line(k, v, t) for k, v, t in self._ids.items() if k not in fresh]
            commit.replace.append((self.path, "".join(kept).encode("utf-8")))
            self._lines = len(kept)
        elif self._torn:
            new = b"\n" + new
        self._torn = self._rewrite = False
        commit.append.append((self.path, new))
        self._lines += len(self._unwritten)
        self._in_flight, self._unwritten = self._unwritten, []

    def committed(self) -> None:
        self._in_flight = []
        self._carried_in_flight = []
        self._undo = None

    def failed(self) -> None:
        """The commit was not written: its lines go into the next one, which
        rewrites the file if this one was to (it may have been renamed into place
        before the failure)."""
        self._unwritten[:0] = self._in_flight
        self._in_flight = []
        self._carried[:0] = self._carried_in_flight
        self._carried_in_flight = []
        if self._undo is not None:
            self._torn, self._rewrite = self._undo
            self._undo = None


def remove_temporaries(checklist_file: str) -> None:
    """Remove the temporary files a manager killed in the middle of a write left
    beside the checklist, the state file and the reply journal (one line each)."""
    from nowcast.fileutils import remove_stale_temporaries

    for path in (checklist_file, state_path(checklist_file), replies_path(checklist_file)):
        for name in remove_stale_temporaries(path):
            logger.warning("removed %s, left by a write that was cut short", name)


def _set_aside(path: str, what: str, why: object) -> None:
    """Move an unusable file aside (never delete it) with one ERROR line.

    :raises ConfigError: it cannot be moved either (the manager could not write
        it afterwards): one clear line rather than a loop of failed writes.
    """
    from nowcast.errors import ConfigError
    from nowcast.fileutils import move_aside

    text = " ".join(str(why).split())[:300] or type(why).__name__
    try:
        aside = move_aside(path)
    except OSError as e:
        raise ConfigError(
            f"{what} {path} cannot be used ({text}) and cannot be moved aside "
            f"({e.strerror}); move it away by hand"
        ) from None
    logger.error("%s %s cannot be used (%s); moved it to %s", what, path, text, aside)


def check_state_data(data: object) -> None:
    """Raise ``ValueError`` naming the first field of a state file's data that is
    not what the manager writes (so nothing is acted on with a wrong type)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for index, group in enumerate(_list(data, "race groups")):
        where = f"race groups[{index}]"
        _require(isinstance(group, dict), where, "an object", group)
        waiting = group.get("waiting")
        _require(
            isinstance(waiting, dict) and all(_is_int(c) and c >= 0 for c in waiting.values()),
            f"{where}.waiting",
            "an object of counts",
            waiting,
        )
        for number, worker in enumerate(_list(group, "collected")):
            _check_worker(worker, f"{where}.collected[{number}]")
    for index, worker in enumerate(_list(data, "pending launches")):
        _check_worker(worker, f"pending launches[{index}]")
        tries = worker.get("try", 1)
        _require(
            _is_int(tries) and tries >= 1, f"pending launches[{index}].try", "1 or more", tries
        )
    supervision = data.get("supervision", {})
    _require(isinstance(supervision, dict), "supervision", "an object", supervision)
    for index, launched in enumerate(_list(supervision, "running")):
        _check_fields(launched, Launched, f"supervision.running[{index}]")
        pid = launched["pid"]
        _require(
            (pid is None and launched.get("job") is not None)  # a batch job
            or (pid is not None and 0 < pid < 2**22),
            f"supervision.running[{index}].pid",
            "a process id (none for a batch job)",
            pid,
        )
    for index, retry in enumerate(_list(supervision, "retries")):
        _check_fields(retry, Retry, f"supervision.retries[{index}]")
        _check_worker(retry["worker"], f"supervision.retries[{index}].worker")
    for index, entry in enumerate(_list(supervision, "stopping")):
        _require(
            isinstance(entry, list)
            and len(entry) == 2
            and _is_int(entry[0])
            and 0 < entry[0] < 2**22
            and _is_number(entry[1]),
            f"supervision.stopping[{index}]",
            "[process group, time]",
            entry,
        )
    for index, applied in enumerate(_list(data, "applied")):
        _require(
            isinstance(applied, list)
            and len(applied) == 3
            and isinstance(applied[0], str)
            and isinstance(applied[1], str)
            and _is_number(applied[2]),
            f"applied[{index}]",
            "[message id, reply, time]",
            applied,
        )
    number = data.get("history commit", 0)
    _require(
        isinstance(number, int) and not isinstance(number, bool) and number >= 0,
        "history commit",
        "a whole number",
        number,
    )
    rows = _list(data, "history rows")
    _require(
        rows == []
        or (len(rows) in (5, 6) and all(isinstance(part, list) for part in rows))
        and all(isinstance(row, list) for part in rows for row in part),
        "history rows",
        "six lists of rows (five from before runs from outside had theirs)",
        rows,
    )
    for index, message in enumerate(_list(data, "recent messages")):
        _require(
            isinstance(message, dict)
            and _is_number(message.get("time"))
            and isinstance(message.get("source"), str)
            and isinstance(message.get("type"), str),
            f"recent messages[{index}]",
            "an object of time (a number), source and type (strings)",
            message,
        )


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    _require(isinstance(value, list), key, "a list", value)
    return value


def _require(ok: bool, where: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{where} must be {expected}, got {json.dumps(value)[:80]}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    import math

    return (_is_int(value) and abs(value) < 2**53) or (
        isinstance(value, float) and math.isfinite(value)
    )


_KINDS = {
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "float": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


def _check_fields(data: object, cls: type, where: str) -> None:
    """Check ``data`` against the annotations of the attrs class ``cls``: each
    field it needs is there, and each field's value has its type."""
    _require(isinstance(data, dict), where, "an object", data)
    for field in attrs.fields(cls):
        kind = str(field.type)
        if kind not in _KINDS and not kind.endswith(" | None"):
            continue  # not kept in the file
        if field.name not in data:
            _require(field.default is not attrs.NOTHING, f"{where}.{field.name}", "present", None)
            continue
        value = data[field.name]
        base, optional = kind.removesuffix(" | None"), kind.endswith(" | None")
        ok = (optional and value is None) or _KINDS.get(base, lambda v: True)(value)
        _require(ok, f"{where}.{field.name}", kind, value)


def _check_worker(worker: object, where: str) -> None:
    _require(isinstance(worker, dict), where, "an object", worker)
    _require(
        isinstance(worker.get("module"), str), f"{where}.module", "a string", worker.get("module")
    )
    args = worker.get("args", [])
    _require(isinstance(args, list), f"{where}.args", "a list", args)
    _require(
        isinstance(worker.get("host", ""), str), f"{where}.host", "a string", worker.get("host")
    )


def _line(msg_id: str, reply: str, when: float) -> str:
    """``json.dumps([msg_id, reply, round(when, 3)], ensure_ascii=False)`` and a line
    end, made without the encoder's set-up (once per message)."""
    return f"[{encode_basestring(msg_id)}, {encode_basestring(reply)}, {round(when, 3)!r}]\n"


@attrs.define
class ManagerState:
    """Everything the manager must remember across a restart besides the checklist."""

    replies: ReplyJournal
    races: RaceGroups = attrs.field(factory=RaceGroups)
    # (worker, try, launch token): decided, not yet launched
    pending: list[tuple[NextWorker, int, str]] = attrs.field(factory=list)
    supervision: Supervision = attrs.field(factory=Supervision)
    recent: list[dict] = attrs.field(factory=list)
    path: str = ""
    # the number of the last commit whose history rows the state file carried,
    # and those rows as read at start (Recorder.replay)
    history_commit: int = 0
    history_rows: list = attrs.field(factory=list, repr=False, eq=False)
    _written: str = attrs.field(default="", repr=False, eq=False)
    # each pending launch's JSON, by token: a fan-out's thousands are made once each
    _pending_json: dict = attrs.field(factory=dict, repr=False, eq=False)

    def note_message(self, source: str, msg_type: str, when: float) -> None:
        """Keep the last few messages, newest last."""
        self.recent.append({"time": when, "source": source, "type": msg_type})
        del self.recent[: -defaults.RECENT_MESSAGES]

    def remember(self, msg_id: str, reply: str, now: float, in_history: bool = False) -> None:
        self.replies.remember(msg_id, reply, now, in_history)

    def _durable_json(self) -> str:
        """The part of the state that must survive a restart exactly."""
        made, pending = self._pending_json, []
        for worker, tries, token in self.pending:
            text = made.get((token, tries))
            if text is None:
                plain = {**worker_to_plain(worker), "try": tries, "token": token}
                text = made[(token, tries)] = json.dumps(plain, ensure_ascii=False)
            pending.append(text)
        if len(made) > 2 * len(pending) + 64:  # forget the launches made
            self._pending_json = {(t, n): made[(t, n)] for _, n, t in self.pending}
        races = json.dumps({"race groups": self.races.to_plain()}, ensure_ascii=False)
        rest = json.dumps({"supervision": self.supervision.to_plain()}, ensure_ascii=False)
        # as json.dumps of the three keys together would write it
        return f'{races[:-1]}, "pending launches": [{", ".join(pending)}], {rest[1:]}'

    def add_to(self, commit: Commit, history: bool = False, rows: Any = None) -> bool:
        """Add to ``commit`` what changed since the last one: the state file when
        its durable part changed, and the new lines of the reply journal. Return
        whether the state file is in it.

        ``history``: the history is on, and its rows keep the replies (the journal
        does not). The state file then carries the commit's history ``rows`` (a
        ``nowcast.recorder.Rows``, numbered), and the history is written after its
        rename: a manager killed between the two finds the rows in the state file
        and writes them again (``Recorder.replay``). With the history off, the
        state file is renamed before the journal is appended (which vouches for
        it)."""
        durable = self._durable_json()
        replaced = durable != self._written
        if replaced:
            text = json.dumps(
                {"format": FORMAT, "recent messages": self.recent}, ensure_ascii=False
            )
            # the ids of this commit's messages go into the state file too: it is
            # renamed into place before the reply journal is appended, and a crash
            # between the two must not leave their effects (launches, a race
            # group's reports) on disk without the ids that say they were applied
            applied = ", ".join(self.replies.unwritten_lines())
            carried = ""
            if rows is not None:
                self.history_commit += 1
                rows.state_commit = self.history_commit
                plain = json.dumps(rows.to_plain(), ensure_ascii=False)
                carried = f'"history commit": {self.history_commit}, "history rows": {plain}, '
            commit.replace.append(
                (
                    self.path,
                    f'{text[:-1]}, "applied": [{applied}], {carried}{durable[1:]}'.encode(),
                )
            )
            self._written = durable
        self.replies.add_to(commit, history)
        return replaced

    def committed(self) -> None:
        self.replies.committed()

    def failed(self) -> None:
        """The commit was not written: the next one writes everything again."""
        self._written = ""
        self.replies.failed()

    @classmethod
    def load(
        cls,
        checklist_file: str,
        keep_ids_for: float = defaults.GIVE_UP_AFTER + defaults.REMEMBER_MARGIN,
        now: float | None = None,
    ) -> ManagerState:
        """Read the state files; absent ones give a fresh state. A state file that
        cannot be taken whole (any bytes, any JSON, a field of the wrong type) is
        moved aside with one ERROR line, and the manager starts without it.
        Message ids are kept for ``keep_ids_for`` seconds after they were applied."""
        journal = ReplyJournal(replies_path(checklist_file), keep_ids_for)
        journal.load(time.time() if now is None else now)
        path = state_path(checklist_file)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            check_state_data(data)
            state = cls(
                journal,
                RaceGroups.from_plain(data.get("race groups", [])),
                [
                    (worker_from_plain(w), w.get("try", 1), w.get("token") or new_token())
                    for w in data.get("pending launches", [])
                ],
                Supervision.from_plain(data.get("supervision", {})),
                list(data.get("recent messages", [])),
                path,
            )
        except FileNotFoundError:
            return cls(journal, path=path)
        except Exception as e:  # any bytes, any JSON
            _set_aside(path, "manager state file", e)
            return cls(journal, path=path)
        state._written = state._durable_json()
        state.history_commit = data.get("history commit", 0)
        state.history_rows = data.get("history rows", [])
        recovered = sum(
            journal.recover(msg_id, reply, float(when))
            for msg_id, reply, when in data.get("applied", [])
        )
        if recovered:
            journal.forget(time.time() if now is None else now)
            logger.warning(
                "%d message id(s) applied just before the manager stopped were not yet "
                "in %s; taken from %s, so a worker re-sending one is answered, not "
                "applied again",
                recovered,
                journal.path,
                path,
            )
        logger.info(
            "manager state read from %s: %d remembered message ids, %d race groups waiting, "
            "%d launches pending, %d launched workers watched",
            path,
            len(journal),
            len(state.races.groups),
            len(state.pending),
            len(state.supervision.running),
        )
        return state
