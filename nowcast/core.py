"""The manager's core: what one message does to the manager's state, with no I/O.

``ManagerCore`` reads a message's frames, checks the message against the registry,
applies it to the checklist, calls ``after_<worker>``, and keeps the book of what
follows: the replies held until a commit puts their effects on disk, and the
workers to launch once it has. It opens no socket, writes no file and starts no
process: the manager process (``nowcast.manager``) receives, commits, sends and
launches, asking the core at each step what to do; tests drive the core directly.

The commit cycle, as the core sees it:

1. ``receive(frames, now)`` applies a message; its reply is held.
2. ``start_commit(directory)`` makes the bytes of what changed (a ``Commit``); the
   replies held so far now wait for that commit.
3. ``committed()`` (the commit is on disk) gives back those replies and the
   workers to launch; ``commit_failed()`` holds the replies for the next commit.
4. ``launched(worker, process, tries)`` records each launch, for the next commit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from logging import INFO
from typing import Any

from nowcast import checklist as checklist_file
from nowcast import defaults, recorder
from nowcast.committer import Commit
from nowcast.config import Config
from nowcast.errors import MessageError
from nowcast.logs import log_here
from nowcast.message import (
    Message,
    check_writable,
    load_message_data,
    surely_writable,
    to_plain,
)
from nowcast.next_worker import NextWorker
from nowcast.state import ManagerState, new_token
from nowcast.supervision import Launched, Retry, is_failure, worker_name

# Keys of a worker's registry entry that are settings, not message types.
SETTINGS_KEYS = frozenset(
    {
        "checklist key",
        "timeout",
        "timeout grace",
        "retries",
        "retry delay",
        "late after",
        "sbatch options",  # for batch jobs (nowcast.batch)
        "queue timeout",
    }
)

# Who asks the manager for its status (``python -m nowcast.status``); read-only.
STATUS_SOURCE = "nowcast.status"

# The name the manager signs its replies with.
NAME = "manager"


class Reply:
    """What the manager answers one message with, and where it goes."""

    __slots__ = ("envelope", "text")

    def __init__(self, envelope: list, text: str) -> None:
        self.envelope = envelope
        self.text = text


class ManagerCore:
    """The manager's decisions: apply messages, hold replies until their effects
    are committed, decide launches, retries and race groups."""

    def __init__(
        self,
        config: Config,
        checklist: checklist_file.Checklist,
        state: ManagerState,
        logger: logging.Logger,
        next_workers: Any = None,
        history: recorder.Recorder | None = None,
    ) -> None:
        self.config = config
        self.checklist = checklist
        self.state = state
        self.logger = logger
        self.next_workers = next_workers
        #: Runs, messages and events for the history database, and event actions.
        self.history = history if history is not None else recorder.Recorder(None, config)
        self.checklist_logger = logging.getLogger("checklist")
        #: Called for the process's part of a status reply (pid, files, fork server).
        self.describe_process: Callable[[], dict] = dict
        self.dirty = False  # something was applied that no commit holds yet
        # what no commit holds yet and may wait for the next commit, or
        # LATER_COMMIT_DELAY, rather than make one of its own: launches (the launch
        # journal holds them meanwhile), exits of workers that reported, the
        # history's rows of its own
        self.later = False
        self.unsent: list[Reply] = []  # replies waiting for what is applied to be on disk
        self.in_flight: list[Reply] = []  # replies waiting for the commit being written
        self._launch_after = 0  # pending launches the commit being written holds
        self._cached: tuple = (None, None, 0)  # (config, its registry's workers, max size)

    @property
    def max_message_size(self) -> int:
        """``zmq: max message size``: larger messages get ``invalid message``."""
        return self._settings()[1]

    def _settings(self) -> tuple[dict, int]:
        """The registry's workers and the largest message size, read once per
        config (a reload brings a new config object)."""
        cached = self._cached
        if cached[0] is not self.config:
            zmq_config = self.config.get("zmq") or {}
            size = int(zmq_config.get("max message size", defaults.MAX_MESSAGE_SIZE))
            cached = self._cached = (self.config, self.config["message registry"]["workers"], size)
        return cached[1], cached[2]

    # receiving a message

    def receive(self, frames: list[bytes], now: float) -> Reply | None:
        """Read and apply one message's frames. Its reply is held for the next
        commit; a reply to send at once (a status request) is returned."""
        reply, at_once = self._handle_frames(frames, now)
        if at_once:
            return reply
        if reply is not None:
            self.unsent.append(reply)
        return None

    def _handle_frames(self, frames: list[bytes], now: float) -> tuple[Reply | None, bool]:
        """Read one message's frames; return the reply (None to drop the message)
        and whether it goes at once."""
        try:
            delimiter = frames.index(b"")
        except ValueError:
            self.logger.warning(
                "dropped a message without a routing envelope (%d frames)", len(frames)
            )
            return None, False
        envelope, body = frames[: delimiter + 1], frames[delimiter + 1 :]
        if len(body) != 1:
            return self._invalid(
                envelope, f"expected one frame of text, got {len(body)} frames", body
            ), False
        try:
            data, form = load_message_data(body[0], self.max_message_size)
            msg = Message._from_dict(data)
            if not surely_writable(body[0], form, defaults.MESSAGE_MAX_DEPTH):
                check_writable(data, defaults.MESSAGE_MAX_DEPTH)
        except MessageError as e:
            return self._invalid(envelope, str(e), body), False
        if msg.source == STATUS_SOURCE and msg.type == "status":
            return Reply(envelope, _reply("status", self.status(now)).serialize()), True
        answered = self.state.replies.get(msg.id) if msg.id is not None else None
        if answered is not None:
            self.logger.info(
                "message %s from %s was already applied; answering it again", msg.id, msg.source
            )
            return Reply(envelope, answered), False
        self.dirty = True
        reply = self.apply(msg, now)
        reply.id = msg.id
        text = _in_form(reply, form)
        if msg.type == "need" and len(text) > self.max_message_size:
            # the broker would drop it (closing the manager's connection), and the
            # worker would wait for a reply that never comes: say why instead
            reply = self._too_big(msg, len(text))
            text = _in_form(reply, form)
        if msg.id is not None and msg.type != "need":
            in_history = self.history.keeps_answers
            self.state.remember(msg.id, text, now, in_history)
            self.history.message(msg, reply.type, len(body[0]), text if in_history else None, now)
        else:
            self.history.message(msg, reply.type, len(body[0]), None, now)
        return Reply(envelope, text), False

    def _too_big(self, msg: Message, size: int) -> Message:
        why = (
            f"the value of checklist key {msg.payload!r} is {size:,} bytes as a reply, over "
            f"zmq: max message size ({self.max_message_size:,} bytes)"
        )
        self.logger.error("%s asked for %s; answering 'reply too big'", msg.source, why)
        reply = _reply("reply too big", why)
        reply.id = msg.id
        return reply

    def _invalid(self, envelope: list, why: str, body: list[bytes]) -> Reply:
        sample = b"".join(body)[:80]
        self.logger.warning("invalid message (%s): %r", why, sample)
        return Reply(envelope, Message(NAME, "invalid message", why).serialize())

    # applying one message

    def apply(self, msg: Message, now: float, launched: Launched | None = None) -> Message:
        """Check ``msg`` against the registry and apply it; return the reply.

        ``launched`` is the launched worker a message made up by the manager stands
        for (a silent death or a timeout).
        """
        entry = self._settings()[0].get(msg.source)
        if entry is None:
            self.logger.error("message received from unregistered worker: %s", msg.source)
            return _reply("unregistered worker", msg.source)
        if msg.type not in entry or msg.type in SETTINGS_KEYS:
            self.logger.error(
                "unregistered message type received from %s worker: %s", msg.source, msg.type
            )
            return _reply("unregistered message type", msg.type)
        self.logger.debug(
            "received message from %s: (%s) %s", msg.source, msg.type, entry[msg.type]
        )
        self.state.note_message(msg.source, msg.type, now)
        if msg.type == "clear checklist":
            return self._clear_checklist()
        if msg.type == "need":
            return self._need(msg)
        if launched is None:
            launched = self.state.supervision.claim(msg.source, msg.id)
        retries = entry.get("retries", 0)
        will_retry = launched is not None and is_failure(msg.type) and launched.tries <= retries
        self.history.reported(msg, launched, retries, will_retry)
        if will_retry:
            return self._retry(msg, entry, launched, now)
        return self._continue(msg, entry)

    def _retry(self, msg: Message, entry: dict, launched: Launched, now: float) -> Message:
        """Schedule another try of a failed worker instead of calling its after_*."""
        delays = entry.get("retry delay", 0)
        if not isinstance(delays, list):
            delays = [delays]
        delay = float(delays[min(launched.tries - 1, len(delays) - 1)])
        self.state.supervision.retries.append(
            Retry(plain_worker(launched.next_worker()), launched.tries + 1, now + delay)
        )
        self.history.retry(launched, launched.next_worker(), delay, entry.get("retries", 0) + 1)
        self.logger.warning(
            "%s reported (%s) on try %d of %d; launching it again in %g s",
            msg.source,
            msg.type,
            launched.tries,
            entry.get("retries", 0) + 1,
            delay,
        )
        return _reply("ack")

    def _clear_checklist(self) -> Message:
        if self.checklist_logger.handlers:
            self.checklist_logger.info("checklist:\n%s", self.checklist.to_yaml().decode("utf-8"))
        self.checklist.clear()
        self.logger.info("checklist cleared")
        return _reply("checklist cleared")

    def _need(self, msg: Message) -> Message:
        try:
            value = self.checklist.get(msg.payload, _ABSENT) if _hashable(msg.payload) else _ABSENT
        except TypeError:
            value = _ABSENT
        if value is _ABSENT:
            self.logger.error(
                "%s asked for checklist key %r, which is not in the checklist",
                msg.source,
                msg.payload,
            )
            return _reply("unknown checklist key", msg.payload)
        return _reply("ack", value)

    def _continue(self, msg: Message, entry: dict) -> Message:
        """Merge the payload and call ``after_<worker>``, as one unit: when the
        function is missing or raises, the checklist is left as it was."""
        after = getattr(self.next_workers, f"after_{msg.source}", None)
        if after is None:
            self.logger.error(
                "no after_%s function in next workers module %s; the checklist is unchanged",
                msg.source,
                self.config["message registry"]["next workers module"],
            )
            return _reply("no after_worker function", f"after_{msg.source}")
        key = entry.get("checklist key", msg.source)
        self.checklist.begin()
        try:
            self.checklist.merge(key, msg.payload)
            result = after(msg, self.config, self.checklist)
            next_workers, racers = read_after_result(result)
        except Exception as e:
            self.checklist.rollback()
            self.logger.exception(
                "after_%s raised an exception handling (%s) message; the checklist is unchanged",
                msg.source,
                msg.type,
            )
            return _reply("after_worker function failed", f"{type(e).__name__}: {e}")
        finally:
            self.checklist.end()
        log_here(
            self.logger, INFO, "checklist updated with [%s] items from %s worker", key, msg.source
        )
        held, launch_now = self.state.races.report(msg.source, next_workers)
        if held:
            if launch_now:
                self.logger.info("race condition group complete; launching what it held back")
            else:
                self.logger.info(
                    "%s reported; holding its next workers until its race group completes",
                    msg.source,
                )
        if racers:
            self.state.races.start(_instances(racers, next_workers))
            self.logger.info(
                "race condition group started: waiting for %s", ", ".join(sorted(racers))
            )
        self.state.pending.extend((worker, 1, new_token()) for worker in launch_now)
        self.history.decided(msg.source, launch_now, self.state.races.completed)
        return _reply("ack")

    # commits: what is applied goes to disk, then the replies, then the launches

    def sendable(self, writing: bool) -> list[Reply]:
        """The held replies that may go now: all of them when nothing applied
        waits for a commit (invalid messages, answers given before)."""
        if self.dirty or writing:
            return []
        replies, self.unsent = self.unsent, []
        return replies

    def start_commit(self, checklist_path: str) -> Commit:
        """The bytes of what changed, made now, so later messages do not change
        them; the replies held so far wait for this commit."""
        commit = Commit(os.path.dirname(os.path.abspath(checklist_path)))
        try:
            if self.checklist.changed:
                commit.replace.append((checklist_path, checklist_file.to_file(self.checklist)))
            history = self.history
            rows = history.add_to(commit)
            self.state.add_to(commit, history.keeps_answers, rows)
        except Exception:
            self.commit_failed()  # the replies stay held; everything is made again next time
            raise
        self.dirty = self.later = False
        self.in_flight, self.unsent = self.unsent, []
        self._launch_after = len(self.state.pending)
        return commit

    def committed(
        self, room: int | None = None
    ) -> tuple[list[Reply], list[tuple[NextWorker, int, str]]]:
        """The commit is on disk: the replies it makes true, and the workers to
        launch now (their launch is on disk, so a crash from here on does not
        lose it), at most ``room`` of them: the others stay pending, on disk."""
        self.state.committed()
        self.history.committed()
        replies, self.in_flight = self.in_flight, []
        if not self.dirty:
            replies += self.unsent  # nothing applied since: they are all on disk
            self.unsent = []
        launch, self._launch_after = self._launch_after, 0
        if room is not None:
            launch = min(launch, room)
        return replies, self.take_pending(launch) if launch else []

    def commit_failed(self) -> None:
        """The commit was not written: the next one writes everything again, and
        its replies wait for that one."""
        self.checklist.mark_all_changed()
        self.state.failed()
        self.history.failed()
        self.unsent[:0] = self.in_flight
        self.in_flight = []
        self.dirty = True

    # launches and supervision

    def take_pending(self, count: int | None = None) -> list[tuple[NextWorker, int, str]]:
        """Take the first ``count`` pending launches (all by default), to launch:
        ``(worker, try, launch token)``."""
        count = len(self.state.pending) if count is None else count
        pending, self.state.pending = self.state.pending[:count], self.state.pending[count:]
        self.later = True
        return pending

    def entry(self, worker: NextWorker) -> dict:
        """The registry entry of ``worker`` (empty for an unregistered one)."""
        entry = self.config["message registry"]["workers"].get(worker_name(worker.module), {})
        return entry if isinstance(entry, dict) else {}

    def launched(
        self,
        worker: NextWorker,
        process: Any,
        tries: int,
        token: str | None = None,
        started: float | None = None,
    ) -> None:
        """Record a worker just launched (or found running at start), to watch it."""
        launched = self.state.supervision.add(
            worker, process, self.entry(worker), tries, token, started
        )
        self.history.launched(worker, launched)
        self.later = True

    def submitted(self, worker: NextWorker, launched: Launched) -> None:
        """Record a worker just submitted as a batch job (nowcast.batch), to watch it."""
        self.state.supervision.running.append(launched)
        self.history.launched(worker, launched)

    def worker_gone(self, launched: Launched, now: float) -> None:
        """A launched worker's exit was handled; one that had not reported is
        handled as a crash. The exit of one that had reported waits for a later
        commit (``later``): a manager that restarts before it is written finds
        the worker gone, and its report on disk."""
        self.state.supervision.remove(launched)
        if launched.reported:
            self.later = True
            self.history.exited(launched)
        else:
            self.dirty = True
            self.apply(Message(launched.name, "crash", launched.end_payload), now, launched)

    def queue_due_retries(self, now: float) -> None:
        """Put the retries that are due among the pending launches."""
        for retry in self.state.supervision.due_retries(now):
            self.dirty = True
            worker = NextWorker(retry.worker["module"], retry.worker["args"], retry.worker["host"])
            self.state.pending.append((worker, retry.tries, new_token()))

    # status

    def status(self, now: float) -> dict:
        """What ``python -m nowcast.status`` shows: a read-only view of the state."""
        supervision = self.state.supervision
        return {
            "manager": self.describe_process(),
            "running": [
                {
                    "name": w.name,
                    "module": w.module,
                    "args": w.args,
                    "host": w.host,
                    "pid": w.pid,
                    "started": w.started,
                    "running for": now - w.started,
                    "try": w.tries,
                    "timeout": w.timeout,
                    **({"job": w.job_view(now)} if w.job is not None else {}),
                }
                for w in supervision.running
            ],
            "launches pending": [plain_worker(w) for w, *_ in self.state.pending],
            "retries pending": [
                {**r.worker, "try": r.tries, "due in": max(0.0, r.due - now)}
                for r in supervision.retries
            ],
            "race groups": [
                {
                    "waiting for": {n: c for n, c in g.waiting.items() if c},
                    "reported": [n for n, c in g.waiting.items() if not c],
                    "then launch": [plain_worker(w) for w in g.collected],
                }
                for g in self.state.races.groups
            ],
            "recent messages": list(self.state.recent),
            "checklist keys": [str(k) for k in dict.keys(self.checklist)],
        }


_ABSENT = object()


def keep_ids_for(config: Config) -> float:
    """Seconds to remember an applied message's id: longer than a worker of this
    config goes on re-sending it (``zmq: give up after`` plus a ``reply timeout``)."""
    zmq_config = config.get("zmq") or {}
    total = 0.0
    for key, default in (
        ("give up after", defaults.GIVE_UP_AFTER),
        ("reply timeout", defaults.REPLY_TIMEOUT),
    ):
        try:
            total += max(0.0, float(zmq_config.get(key, default)))
        except (TypeError, ValueError):
            total += default
    return total + defaults.REMEMBER_MARGIN


def _in_form(reply: Message, form: str) -> str:
    """``reply`` as text in the form its message came in (JSON or YAML)."""
    return reply.serialize() if form == "json" else reply.serialize_yaml()


def _reply(reply_type: str, payload: Any = None) -> Message:
    return Message(NAME, reply_type, to_plain(payload))


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def plain_worker(worker: NextWorker) -> dict:
    return {"module": worker.module, "args": [str(a) for a in worker.args], "host": worker.host}


def _instances(racers: set[str], next_workers: list[NextWorker]) -> list[str]:
    """The race group's members: each named worker as many times as it is launched."""
    names = []
    for name in sorted(racers):
        count = sum(1 for w in next_workers if worker_name(w.module) == name)
        names.extend([name] * max(1, count))
    return names


def read_after_result(result: Any) -> tuple[list[NextWorker], set[str]]:
    """Check what an ``after_*`` function returned: a list of ``NextWorker``, or
    ``(list, set_of_worker_names)``."""
    racers: Any = set()
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError(
                f"expected a list or (list, set of worker names), got a tuple of {len(result)}"
            )
        result, racers = result
        if isinstance(racers, str) or not all(isinstance(n, str) for n in racers):
            raise TypeError(f"expected a set of worker names as the second item, got {racers!r}")
    if result is None:
        result = []
    if not isinstance(result, (list, tuple)):
        raise TypeError(f"expected a list of NextWorker, got {type(result).__name__}")
    for worker in result:
        if not isinstance(worker, NextWorker):
            raise TypeError(f"expected NextWorker items, got {worker!r}")
    return list(result), set(racers)
