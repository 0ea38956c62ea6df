"""The manager: applies workers' messages to the checklist and launches what comes next.

One message's path: frames arrive from the broker, are read into a ``Message``,
checked against the message registry, applied to the checklist, passed to
``after_<worker>`` in the next workers module; then the checklist and the manager's
state are written to disk, the reply is sent, and the next workers are launched.

Writes are group commits: every message waiting is applied before one write, and
the write runs on the committer's thread while the manager applies the messages
that arrive meanwhile; their replies wait for the next commit. So a burst costs a
write per batch, not per message, and the disk and the manager work at once.

Usage: ``python -m nowcast.manager config.yaml [--ignore-checklist]``
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import time
from typing import Any

from nowcast import checklist as checklist_file
from nowcast import defaults, launcher, sockets
from nowcast.committer import Commit, Committer
from nowcast.config import (
    Config,
    lookup,
    require_mapping,
    require_number,
    require_registry,
    require_str,
    require_zmq,
)
from nowcast.errors import ConfigError, MessageError
from nowcast.message import Message, load_message_data
from nowcast.process import LongRunningProcess, main
from nowcast.state import ManagerState
from nowcast.supervision import (
    Launched,
    Retry,
    describe_exit,
    is_failure,
    signal_worker,
    worker_name,
)
from nowcast.worker import NextWorker

# Keys of a worker's registry entry that are settings, not message types.
SETTINGS_KEYS = frozenset({"checklist key", "timeout", "timeout grace", "retries", "retry delay"})

# Who asks the manager for its status (``python -m nowcast.status``); read-only.
STATUS_SOURCE = "nowcast.status"


class Reply:
    """What the manager answers one message with, and where it goes."""

    __slots__ = ("envelope", "text")

    def __init__(self, envelope: list, text: str) -> None:
        self.envelope = envelope
        self.text = text


class NowcastManager(LongRunningProcess):
    """Apply messages from workers to the checklist; launch the next workers."""

    name = "manager"
    warm: launcher.WarmStart | None = None  # starts local workers through a fork server

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.checklist = checklist_file.Checklist()
        self.state: ManagerState | None = None  # read in setup()
        self.checklist_logger = logging.getLogger("checklist")
        self._next_workers = None
        self._next_workers_stamp: tuple | None = None
        self._committer: Committer | None = None
        self._dirty = False  # something was applied that no commit holds yet
        self._unsent: list[Reply] = []  # replies waiting for what is applied to be on disk
        self._in_flight: list[Reply] = []  # replies waiting for the commit being written
        self._launch_after = 0  # pending launches the commit being written holds
        self._retry_commit_at = 0.0  # after a failed commit, when to try again
        self._supervised_at = 0.0  # when supervise() last ran
        self._failed_writes = 0  # commits that failed in a row
        self._failure_logged_at = 0.0

    # configuration

    def validate(self, config: Config) -> None:
        require_zmq(config)
        sockets.check_keys(config, "client")
        require_str(config, "checklist file")
        for name, entry in require_registry(config).items():
            _check_worker_settings(config, name, entry)
        python = lookup(config, "python", default=None)
        if python is not None:
            python = require_str(config, "python")
            if not os.access(python, os.X_OK):
                raise ConfigError(
                    f"{config.file}: key 'python' must be an executable Python "
                    f"interpreter, got {python!r} (no such executable file)"
                )
        if "run" in config:
            hosts = require_mapping(config, "run", "enabled hosts", default={})
            for host in hosts:
                entry = require_mapping(config, "run", "enabled hosts", host)
                options = entry.get("ssh options", [])
                if not isinstance(options, list):
                    raise ConfigError(
                        f"{config.file}: key 'run: enabled hosts: {host}: ssh options' must "
                        f"be a list of ssh arguments, got {options!r}"
                    )
        launcher.warm_start_enabled(config)
        require_number(
            config, "zmq", "max message size", default=defaults.MAX_MESSAGE_SIZE, minimum=1
        )

    def apply_config(self, old: Config, new: Config) -> None:
        if sockets.address(old, "manager") != sockets.address(new, "manager"):
            self.socket.close(linger=0)
            self._connect()
        if (
            old["message registry"]["next workers module"]
            != new["message registry"]["next workers module"]
        ):
            self._next_workers = None
            self._import_next_workers()
        if self.warm is not None:
            self.warm.configure(new)

    # start and stop

    def setup(self) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context()
        self._connect()
        self.warm = launcher.WarmStart(self.logger)
        self.warm.configure(self.config)
        path = self.config["checklist file"]
        self._checklist_path = path
        if self.args.ignore_checklist:
            self.logger.info("ignoring the checklist file, as --ignore-checklist asks")
        else:
            self.checklist = checklist_file.load(path)
        self.state = ManagerState.load(path)
        self._committer = Committer()
        self._import_next_workers()
        if self.state.supervision.running:
            self.logger.info(
                "watching %d worker(s) launched by the previous manager: %s",
                len(self.state.supervision.running),
                ", ".join(f"{w.name} (pid {w.pid})" for w in self.state.supervision.running),
            )
        if self.state.pending:
            self.logger.warning(
                "launching %d worker(s) decided before the previous manager stopped",
                len(self.state.pending),
            )
            self._launch_pending()
        self.logger.debug("listening...")

    def _connect(self) -> None:
        self.socket = sockets.client(self.context, self._zmq.DEALER, self.config, "manager")
        self._poll_set = None
        self.logger.info("connected to %s", sockets.address(self.config, "manager"))

    def shutdown(self) -> None:
        """Finish the commit being written and commit what is applied since,
        answering every message that is then on disk (and launching, and
        recording, the workers those commits decided on)."""
        if self._committer is not None:
            self._finish_commit(self._committer.wait)
            for _ in range(3):  # a commit may launch workers, whose record needs another
                if not self._dirty:
                    break
                self._retry_commit_at = 0.0
                self._commit_now()
            self._committer.close()
        if hasattr(self, "context"):
            self.socket.close(linger=0)
            self.context.term()
        if self.warm is not None:
            self.warm.close()

    # the loop

    def loop(self) -> None:
        zmq = self._zmq
        if self._poll_set is None:
            self._poll_set = self._zmq.Poller()
            self._poll_set.register(self.socket, self._zmq.POLLIN)
            self._poll_set.register(self._committer.fileno(), self._zmq.POLLIN)
        events = dict(self._poll_set.poll(defaults.POLL_MS))
        if self._committer.fileno() in events:
            self._finish_commit(self._committer.finish)
        if self.socket in events:
            batch = []
            for _ in range(defaults.BATCH_MAX):
                try:
                    batch.append(self.socket.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
            self.handle_batch(batch)
        now = time.time()
        if not events or now - self._supervised_at >= defaults.SUPERVISE_EVERY:
            self._supervised_at = now
            self.supervise(now)
        self._start_commit()

    def handle_batch(self, batch: list[list[bytes]]) -> None:
        """Apply every message in ``batch``; their replies wait for the commit."""
        self._reimport_next_workers_if_changed()
        for frames in batch:
            reply = self.handle_frames(frames)
            if reply is not None:
                self._unsent.append(reply)
        if not (self._dirty or self._committer.busy):
            self._send(self._unsent)  # nothing to wait for (invalid messages, status)

    # commits: what is applied goes to disk, then the replies, then the launches

    def _start_commit(self) -> None:
        """Hand what was applied since the last commit to the committer, unless it
        is still writing that one."""
        if not self._dirty or self._committer.busy or time.time() < self._retry_commit_at:
            return
        commit = self._make_commit()
        self._in_flight, self._unsent = self._unsent, []
        self._launch_after = len(self.state.pending)
        if commit:
            self._committer.submit(commit)
        else:
            self._committed()

    def _make_commit(self) -> Commit:
        """The bytes of what changed, made now, so later messages do not change them."""
        self._dirty = False
        commit = Commit(os.path.dirname(os.path.abspath(self._checklist_path)))
        if self.checklist.changed:
            commit.replace.append((self._checklist_path, self.checklist.to_yaml()))
        self.state.add_to(commit)
        return commit

    def _finish_commit(self, finish) -> None:
        """Reply and launch for the commit just written; after a failed write,
        keep the replies for the next commit, which writes everything again."""
        if not self._committer.busy:
            return
        try:
            if not finish():
                return
        except OSError as e:
            self._failed_writes += 1
            now = time.time()
            if self._failed_writes == 1 or now - self._failure_logged_at >= 60:
                self._failure_logged_at = now
                self.logger.error(
                    "cannot write the checklist and state to disk (%s); replies are held, and "
                    "writing is tried again every %g s%s",
                    e,
                    defaults.COMMIT_RETRY_DELAY,
                    f" ({self._failed_writes} tries so far)" if self._failed_writes > 1 else "",
                )
            self.checklist.mark_all_changed()
            self.state.failed()
            self._unsent[:0] = self._in_flight
            self._in_flight = []
            self._dirty = True
            self._retry_commit_at = time.time() + defaults.COMMIT_RETRY_DELAY
            return
        if self._failed_writes:
            self.logger.warning(
                "checklist and state written to disk again, after %d failed tries; "
                "sending the replies held",
                self._failed_writes,
            )
            self._failed_writes = 0
        self._committed()

    def _committed(self) -> None:
        self.state.committed()
        replies, self._in_flight = self._in_flight, []
        if not self._dirty:
            replies += self._unsent  # nothing applied since: they are all on disk
            self._unsent = []
        self._send(replies)
        launch, self._launch_after = self._launch_after, 0
        if launch:
            self._launch_pending(launch)

    def _commit_now(self) -> None:
        """Commit what was applied and wait for it (at start and at stop)."""
        self._start_commit()
        self._finish_commit(self._committer.wait)

    def _send(self, replies: list[Reply]) -> None:
        for reply in replies:
            self.socket.send_multipart([*reply.envelope, reply.text.encode("utf-8")])

    def handle_frames(self, frames: list[bytes]) -> Reply | None:
        """Read one message's frames; return the reply to send, or None to drop it."""
        try:
            delimiter = frames.index(b"")
        except ValueError:
            self.logger.warning(
                "dropped a message without a routing envelope (%d frames)", len(frames)
            )
            return None
        envelope, body = frames[: delimiter + 1], frames[delimiter + 1 :]
        if len(body) != 1:
            return self._invalid(
                envelope, f"expected one frame of text, got {len(body)} frames", body
            )
        try:
            data, form = load_message_data(body[0])
            msg = Message._from_dict(data)
        except MessageError as e:
            return self._invalid(envelope, str(e), body)
        if msg.source == STATUS_SOURCE and msg.type == "status":
            self._send([Reply(envelope, self._reply("status", self.status()).serialize())])
            return None
        if msg.id is not None and msg.id in self.state.replies:
            self.logger.info(
                "message %s from %s was already applied; answering it again", msg.id, msg.source
            )
            return Reply(envelope, self.state.replies[msg.id])
        self._dirty = True
        reply = self.apply(msg)
        reply.id = msg.id
        text = reply.serialize() if form == "json" else reply.serialize_yaml()
        if msg.id is not None and msg.type != "need":
            self.state.remember(msg.id, text)
        return Reply(envelope, text)

    def _invalid(self, envelope: list, why: str, body: list[bytes]) -> Reply:
        sample = b"".join(body)[:80]
        self.logger.warning("invalid message (%s): %r", why, sample)
        return Reply(envelope, Message(self.name, "invalid message", why).serialize())

    # applying one message

    def apply(self, msg: Message, launched: Launched | None = None) -> Message:
        """Check ``msg`` against the registry and apply it; return the reply.

        ``launched`` is the launched worker a message made up by the manager stands
        for (a silent death or a timeout).
        """
        registry = self.config["message registry"]["workers"]
        entry = registry.get(msg.source)
        if entry is None:
            self.logger.error("message received from unregistered worker: %s", msg.source)
            return self._reply("unregistered worker", msg.source)
        if msg.type not in entry or msg.type in SETTINGS_KEYS:
            self.logger.error(
                "unregistered message type received from %s worker: %s", msg.source, msg.type
            )
            return self._reply("unregistered message type", msg.type)
        self.logger.debug(
            "received message from %s: (%s) %s", msg.source, msg.type, entry[msg.type]
        )
        self.state.note_message(msg.source, msg.type, time.time())
        if msg.type == "clear checklist":
            return self._clear_checklist()
        if msg.type == "need":
            return self._need(msg)
        if launched is None:
            launched = self.state.supervision.claim(msg.source, msg.id)
        retries = entry.get("retries", 0)
        if launched is not None and is_failure(msg.type) and launched.tries <= retries:
            return self._retry(msg, entry, launched)
        return self._continue(msg, entry)

    def _retry(self, msg: Message, entry: dict, launched: Launched) -> Message:
        """Schedule another try of a failed worker instead of calling its after_*."""
        delays = entry.get("retry delay", 0)
        if not isinstance(delays, list):
            delays = [delays]
        delay = float(delays[min(launched.tries - 1, len(delays) - 1)])
        self.state.supervision.retries.append(
            Retry(_plain_worker(launched.next_worker()), launched.tries + 1, time.time() + delay)
        )
        self.logger.warning(
            "%s reported (%s) on try %d of %d; launching it again in %g s",
            msg.source,
            msg.type,
            launched.tries,
            entry.get("retries", 0) + 1,
            delay,
        )
        return self._reply("ack")

    def _reply(self, reply_type: str, payload: Any = None) -> Message:
        return Message(self.name, reply_type, payload)

    def _clear_checklist(self) -> Message:
        if self.checklist_logger.handlers:
            self.checklist_logger.info("checklist:\n%s", self.checklist.to_yaml().decode("utf-8"))
        self.checklist.clear()
        self.logger.info("checklist cleared")
        return self._reply("checklist cleared")

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
            return self._reply("unknown checklist key", msg.payload)
        return self._reply("ack", value)

    def _continue(self, msg: Message, entry: dict) -> Message:
        key = entry.get("checklist key", msg.source)
        self.checklist.merge(key, msg.payload)
        self.logger.info("checklist updated with [%s] items from %s worker", key, msg.source)
        after = getattr(self._next_workers, f"after_{msg.source}", None)
        if after is None:
            self.logger.error(
                "no after_%s function in next workers module %s",
                msg.source,
                self.config["message registry"]["next workers module"],
            )
            return self._reply("no after_worker function", f"after_{msg.source}")
        try:
            result = after(msg, self.config, self.checklist)
            next_workers, racers = _read_after_result(result)
        except Exception as e:
            self.logger.exception(
                "after_%s raised an exception handling (%s) message", msg.source, msg.type
            )
            return self._reply("after_worker function failed", f"{type(e).__name__}: {e}")
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
        self.state.pending.extend((worker, 1) for worker in launch_now)
        return self._reply("ack")

    # launching

    def _launch_pending(self, count: int | None = None) -> None:
        """Launch the first ``count`` pending workers (all by default): their
        launch is on disk, so a crash from here on does not lose it."""
        count = len(self.state.pending) if count is None else count
        pending, self.state.pending = self.state.pending[:count], self.state.pending[count:]
        self._dirty = True
        registry = self.config["message registry"]["workers"]
        for worker, tries in pending:
            try:
                process = launcher.launch(worker, self.config, self.logger, self.warm)
            except (OSError, ConfigError) as e:
                self.logger.error("cannot launch %s: %s", worker, e)
                continue
            entry = registry.get(worker_name(worker.module), {})
            self.state.supervision.add(worker, process, entry, tries)

    # supervision of launched workers

    def supervise(self, now: float) -> None:
        """Stop workers past their timeout; handle workers that exited without
        reporting as crashes; launch retries that are due."""
        if self.warm is not None:
            self.warm.tend()
        supervision = self.state.supervision
        for launched, signum in supervision.overdue(now):
            self._dirty = True
            if signum == signal.SIGTERM:
                self.logger.error(
                    "%s (pid %s, args %s) ran past its timeout of %s s; sending SIGTERM",
                    launched.name,
                    launched.pid,
                    launched.args,
                    launched.timeout,
                )
            else:
                self.logger.error(
                    "%s (pid %s) still running %s s after SIGTERM; sending SIGKILL",
                    launched.name,
                    launched.pid,
                    launched.grace,
                )
            signal_worker(launched, signum)
        exited = supervision.poll_exits()
        if any(not w.reported for w in exited) and self.socket.poll(0):
            return  # apply the messages already waiting first: one may be from them
        for launched in exited:
            supervision.remove(launched)
            self._dirty = True
            ssh_said = launcher.ssh_error(launched.stderr_path)
            if launched.reported:
                self.logger.debug(
                    "%s (pid %s) %s after %.1f s",
                    launched.name,
                    launched.pid,
                    describe_exit(launched.exit_code),
                    now - launched.started,
                )
                continue
            why = (
                f"ran past its timeout of {launched.timeout} s and was stopped"
                if launched.term_sent is not None
                else f"{describe_exit(launched.exit_code)} without reporting to the manager"
            )
            if ssh_said:
                why += f"; ssh to {launched.host} said: {ssh_said}"
            self.logger.error(
                "%s (pid %s, args %s, host %s) %s; handling it as a crash",
                launched.name,
                launched.pid,
                launched.args,
                launched.host,
                why,
            )
            self.apply(Message(launched.name, "crash", None), launched)
        for retry in supervision.due_retries(now):
            self._dirty = True
            worker = NextWorker(retry.worker["module"], retry.worker["args"], retry.worker["host"])
            self.state.pending.append((worker, retry.tries))

    def status(self) -> dict:
        """What ``python -m nowcast.status`` shows: a read-only view of the state."""
        now = time.time()
        supervision = self.state.supervision
        return {
            "manager": {
                "pid": os.getpid(),
                "config file": str(self.config.file),
                "checklist file": self._checklist_path,
                "fork server": self.warm.describe() if self.warm is not None else None,
            },
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
                }
                for w in supervision.running
            ],
            "launches pending": [_plain_worker(w) for w, _ in self.state.pending],
            "retries pending": [
                {**r.worker, "try": r.tries, "due in": max(0.0, r.due - now)}
                for r in supervision.retries
            ],
            "race groups": [
                {
                    "waiting for": {n: c for n, c in g.waiting.items() if c},
                    "then launch": [_plain_worker(w) for w in g.collected],
                }
                for g in self.state.races.groups
            ],
            "recent messages": list(self.state.recent),
            "checklist keys": [str(k) for k in dict.keys(self.checklist)],
        }

    # the next workers module

    def _import_next_workers(self) -> None:
        name = self.config["message registry"]["next workers module"]
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            self._next_workers = importlib.import_module(name)
        except Exception as e:
            self.logger.exception("cannot import next workers module %s", name)
            raise ConfigError(
                f"{self.config.file}: key 'message registry: next workers module': cannot "
                f"import {name!r}: {type(e).__name__}: {e}"
            ) from None
        self._next_workers_stamp = _file_stamp(self._next_workers)
        self.logger.info("next workers module loaded from %s", name)

    def _reimport_next_workers_if_changed(self) -> None:
        stamp = _file_stamp(self._next_workers)
        if stamp == self._next_workers_stamp:
            return
        self._next_workers_stamp = stamp
        try:
            self._next_workers = importlib.reload(self._next_workers)
        except Exception:
            self.logger.exception(
                "next workers module changed but cannot be re-imported; still using the previous one"
            )
            return
        self.logger.info("next workers module re-imported: its file changed")


_ABSENT = object()


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _file_stamp(module: Any) -> tuple | None:
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _plain_worker(worker: NextWorker) -> dict:
    return {"module": worker.module, "args": [str(a) for a in worker.args], "host": worker.host}


def _instances(racers: set[str], next_workers: list[NextWorker]) -> list[str]:
    """The race group's members: each named worker as many times as it is launched."""
    names = []
    for name in sorted(racers):
        count = sum(1 for w in next_workers if worker_name(w.module) == name)
        names.extend([name] * max(1, count))
    return names


def _check_worker_settings(config: Config, name: str, entry: dict) -> None:
    where = ("message registry", "workers", name)
    for key in ("timeout", "timeout grace"):
        if key in entry:
            require_number(config, *where, key, minimum=0.001)
    if "retries" in entry:
        retries = entry["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(
                f"{config.file}: key 'message registry: workers: {name}: retries' must be "
                f"a whole number of at least 0, got {retries!r}"
            )
    if "retry delay" in entry:
        delays = entry["retry delay"]
        items = delays if isinstance(delays, list) else [delays]
        if not items or any(
            isinstance(d, bool) or not isinstance(d, (int, float)) or d < 0 for d in items
        ):
            raise ConfigError(
                f"{config.file}: key 'message registry: workers: {name}: retry delay' must "
                f"be a number of seconds or a list of them, got {delays!r}"
            )


def _read_after_result(result: Any) -> tuple[list[NextWorker], set[str]]:
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


def run(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m nowcast.manager``."""
    main(
        NowcastManager,
        argv,
        arguments=[
            (
                ["--ignore-checklist"],
                {
                    "action": "store_true",
                    "help": "Start with an empty checklist instead of the one in the checklist file.",
                },
            )
        ],
    )


if __name__ == "__main__":
    run()
