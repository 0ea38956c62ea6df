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

import os
import signal
import time
from typing import TYPE_CHECKING, Any

from nowcast import check, defaults, launcher, launches, processes, recorder, sockets
from nowcast import checklist as checklist_file
from nowcast import state as state_files
from nowcast.batch import hosts as batch_hosts
from nowcast.batch.jobs import BatchJobs
from nowcast.committer import Committer
from nowcast.config import (
    Config,
    lookup,
    require_mapping,
    require_number,
    require_registry,
    require_str,
    require_zmq,
)
from nowcast.core import STATUS_SOURCE, ManagerCore, Reply, keep_ids_for
from nowcast.errors import ConfigError
from nowcast.launches import LaunchJournal, journal_path
from nowcast.lock import ManagerLock, lock_path
from nowcast.logs import flushes_held
from nowcast.modules import file_stamp, import_fresh
from nowcast.process import LongRunningProcess, run_process
from nowcast.state import ManagerState
from nowcast.supervision import describe_exit, kill_group, proc_start, signal_worker

if TYPE_CHECKING:
    from nowcast.forkclient import WarmProcess

__all__ = ["STATUS_SOURCE", "NowcastManager", "run"]


class NowcastManager(LongRunningProcess):
    """Apply messages from workers to the checklist; launch the next workers.

    The decisions are the core's (``nowcast.core``); this process receives the
    messages, writes the commits, sends the replies and launches the workers.
    """

    name = "manager"
    cli_arguments = (
        (
            ["--ignore-checklist"],
            {
                "action": "store_true",
                "help": "Start with an empty checklist instead of the one in the checklist file.",
            },
        ),
    )
    warm: launcher.WarmStart | None = None  # starts local workers through a fork server
    core: ManagerCore | None = None  # made in setup()
    batch: BatchJobs | None = None  # submits workers to batch hosts and follows their jobs

    def __init__(self, args: Any = None, name: str | None = None) -> None:
        super().__init__(args, name)
        self._next_workers_stamp: tuple | None = None
        self._validated: tuple = (None, None)  # (config, its next workers module)
        self._committer: Committer | None = None
        self._lock: ManagerLock | None = None
        self._launch_journal: LaunchJournal | None = None
        self._journal_mark = 0
        self._commit_started = 0.0  # (monotonic) when the last commit was started
        self._starting: list[tuple[float, Any]] = []  # (when, process) launched lately
        self._retry_commit_at = 0.0  # after a failed commit, when to try again
        self._supervised_at = 0.0  # when supervise() last ran
        self._failed_writes = 0  # commits that failed in a row
        self._failure_logged_at = 0.0
        # after a commit of several messages: until when the next waits for more to
        # join it, and how many it waits for (the senders just answered, and those
        # applied meanwhile)
        self._gather_until = 0.0
        self._gather_count = 0
        self._gather_limit = 0.0  # the latest the wait may go on to
        self._gather_seen = 0  # replies held when the wait last went on
        self._gather_skip = 0  # commits not to wait before (after a wait in vain)

    @property
    def checklist(self) -> checklist_file.Checklist:
        return self.core.checklist

    @property
    def state(self) -> ManagerState:
        return self.core.state

    # configuration

    def validate(self, config: Config) -> None:
        require_zmq(config)
        sockets.check_keys(config, "client")
        require_str(config, "checklist file")
        for name, entry in require_registry(config).items():
            _check_worker_settings(config, name, entry)
            batch_hosts.check_worker(config, name, entry)
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
        batch_hosts.read(config)
        launcher.warm_start_enabled(config)
        recorder.validate(config)
        require_number(
            config, "zmq", "max message size", default=defaults.MAX_MESSAGE_SIZE, minimum=1
        )
        # last: a config is only taken whole, its next workers module imported
        self._validated = (config, self._load_next_workers(config))

    def apply_config(self, old: Config, new: Config) -> None:
        self.core.config = new
        self.state.replies.keep_for = keep_ids_for(new)
        if sockets.address(old, "manager") != sockets.address(new, "manager"):
            self._reconnect()
        self._use_next_workers(new)
        if self.warm is not None:
            self.warm.configure(new)
        self.core.history.reconfigure(new)
        if self.batch is not None:
            self.batch.configure(new)
        check.log_problems(new, self.logger, self.core.next_workers)

    # start and stop

    def setup(self) -> None:
        import zmq

        path = self.config["checklist file"]
        self._checklist_path = path
        # before anything is read or connected: one manager per checklist
        self._lock = ManagerLock(lock_path(path))
        self._lock.acquire()
        state_files.remove_temporaries(path)  # only once no other manager can be writing
        self._zmq = zmq
        self.context = zmq.Context()
        self._connect()
        self.warm = launcher.WarmStart(self.logger, note=self._note_warm_launches)
        self.warm.configure(self.config)
        if self.args.ignore_checklist:
            self.logger.info("ignoring the checklist file, as --ignore-checklist asks")
            checklist = checklist_file.Checklist()
        else:
            checklist = checklist_file.load(path)
        state = ManagerState.load(path, keep_ids_for(self.config))
        processes.forget_stopped(state.supervision, path, self.logger)
        history = recorder.Recorder.open(self.config)
        try:
            if history.replay(state.history_commit, state.history_rows):
                self.logger.warning(
                    "the history lacked the last write before the manager stopped; "
                    "wrote its rows again, from %s",
                    state.path,
                )
        except (OSError, ValueError) as e:
            self.logger.error(
                "cannot write the last write's history rows again, from %s (%s): "
                "the history lacks that write's runs and messages",
                state.path,
                e,
            )
        state.history_commit = max(state.history_commit, history.state_commit())
        state.history_rows = []
        now = time.time()
        merged = state.replies.merge(history.applied_since(now - state.replies.keep_for), now)
        if merged:
            self.logger.info(
                "%d recently applied message id(s) read from the history database", merged
            )
        self.core = ManagerCore(self.config, checklist, state, self.logger, history=history)
        history.start(state.supervision.running)
        self.core.dirty = True  # the history's "manager started", committed at the end of setup
        self.core.describe_process = self._describe
        self._committer = Committer(history.checkpoints)
        self._use_next_workers(self.config)
        check.log_problems(self.config, self.logger, self.core.next_workers)
        self.batch = BatchJobs(path, self.logger)
        self.batch.configure(self.config)
        registry = self.config["message registry"]["workers"]
        if self.batch.reattach(self.state.pending, self.state.supervision.running, registry):
            self.core.dirty = True
        if self.state.supervision.running:
            self.logger.info(
                "watching %d worker(s) launched by the previous manager: %s",
                len(self.state.supervision.running),
                ", ".join(f"{w.name} (pid {w.pid})" for w in self.state.supervision.running),
            )
        self._launch_journal = LaunchJournal(journal_path(path))
        if self.state.pending:
            self._find_pending_launched()
        if self.state.pending:
            self.logger.warning(
                "launching %d worker(s) decided before the previous manager stopped",
                len(self.state.pending),
            )
            self._launch(self.core.take_pending(self._launch_room(time.time())))
        self._commit_now()  # the history knows this manager started before it serves
        self.logger.debug("listening...")

    def _find_pending_launched(self) -> None:
        """Of the launches the previous manager decided, watch those it made (found
        in the launch journal, or running with their token) instead of making them
        again: a launch happens at most once."""
        recorded = self._launch_journal.read()
        tokens = {token for _, _, token in self.state.pending}
        running = launches.find_by_token(tokens - set(recorded))
        still = []
        for worker, tries, token in self.state.pending:
            record = recorded.get(token)
            if record is not None:
                pid, started = record["pid"], record.get("started")
                process = launches.Adopted(pid, record.get("proc start"))
            elif token in running:
                pid, started = running[token], None
                process = launches.Adopted(pid)
            else:
                still.append((worker, tries, token))
                continue
            self.logger.warning(
                "%s was launched by the previous manager (pid %s) just before it stopped; "
                "watching it, not launching it again",
                worker,
                pid,
            )
            self.core.launched(worker, process, tries, token, started)
        self.state.pending = still

    def _connect(self) -> None:
        self.socket = sockets.client(self.context, self._zmq.DEALER, self.config, "manager")
        self._poll_set = None
        self._warm_fds: set[int] = set()  # the fork servers' sockets in the poll set
        self.logger.info("connected to %s", sockets.address(self.config, "manager"))

    def _reconnect(self) -> None:
        """Connect to the broker's new manager address. The old socket is dropped
        with whatever it still holds (a reply queued for an address the broker
        has left; its worker sends again): waiting for it to be sent would keep
        the manager's stop waiting for ever."""
        self.socket.close(linger=0)
        self._connect()

    def shutdown(self) -> None:
        """Finish the commit being written and commit what is applied since,
        answering every message that is then on disk (and launching, and
        recording, the workers those commits decided on)."""
        if self._committer is not None:
            self._finish_commit(self._committer.wait)
            self.core.history.stopping()
            self.core.dirty = True
            for _ in range(3):  # a commit may launch workers, whose record needs another
                if not (self.core.dirty or self.core.later):
                    break
                self.core.dirty = True
                self._retry_commit_at = 0.0
                self._commit_now()
            self._committer.close()
            self.core.history.close()
        if hasattr(self, "context"):
            self.socket.close(linger=0)
            self.context.term()
        if self.warm is not None:
            self.warm.close()
        if self._launch_journal is not None:
            self._launch_journal.close()
        if self._lock is not None:
            self._lock.release()

    # the loop

    def loop(self) -> None:
        zmq = self._zmq
        if self._poll_set is None:
            self._poll_set = self._zmq.Poller()
            self._poll_set.register(self.socket, self._zmq.POLLIN)
            self._poll_set.register(self._committer.fileno(), self._zmq.POLLIN)
        if self.warm is not None:  # a worker's exit wakes the manager at once
            fds = self.warm.fds()
            if fds != self._warm_fds:
                for fd in self._warm_fds - fds:
                    self._poll_set.unregister(fd)
                for fd in fds - self._warm_fds:
                    self._poll_set.register(fd, zmq.POLLIN)
                self._warm_fds = fds
        timeout = defaults.POLL_MS
        if self._gather_until:  # a group commit waits for more messages
            left = self._gather_until - time.monotonic()
            if left > 0:
                timeout = poll_ms(left, timeout)
            else:
                self._gather_ended()
        if self.core.later and not self.core.dirty:  # what waits for a commit
            left = self._commit_started + defaults.LATER_COMMIT_DELAY - time.monotonic()
            if left > 0:
                timeout = poll_ms(left, timeout)
            else:
                self.core.dirty = True
        deadline = self.state.supervision.next_deadline()
        if deadline is not None:  # a timeout or a retry falls due before the idle poll ends
            timeout = poll_ms(deadline - time.time(), timeout)
        events = dict(self._poll_set.poll(timeout))
        if self._committer.fileno() in events:
            self._finish_commit(self._committer.finish)
        if self.socket in events:
            self.handle_batch(self._receive_batch())
        now = time.time()
        idle = not events and timeout == defaults.POLL_MS
        due = deadline is not None and now >= deadline
        exits = any(fd in events for fd in self._warm_fds)  # (supervise reads them)
        if idle or due or exits or now - self._supervised_at >= defaults.SUPERVISE_EVERY:
            self._supervised_at = now
            self.supervise(now)
        if self.state.pending and not self.core.dirty and self._launch_room(now):
            self.core.dirty = True  # a commit, empty or not, launches what waits
        self._start_commit()

    def _receive_batch(self) -> list[list[bytes]]:
        """The messages waiting, up to ``BATCH_MAX``, each as its frames. Frame by
        frame, each frame's ``more`` flag read from it: ``recv_multipart`` asks
        the socket for that flag with a call of its own per frame. (A message's
        frames arrive together, so the rest are there once the first is.)"""
        zmq = self._zmq
        recv, flags = self.socket.recv, zmq.NOBLOCK
        batch = []
        for _ in range(defaults.BATCH_MAX):
            try:
                frame = recv(flags, copy=False)
            except zmq.Again:
                break
            frames = [frame.bytes]
            while frame.more:
                frame = recv(flags, copy=False)
                frames.append(frame.bytes)
            batch.append(frames)
        return batch

    def handle_batch(self, batch: list[list[bytes]]) -> None:
        """Apply every message in ``batch``; their replies wait for the commit.
        Their log lines are flushed to the log file once, after the last."""
        self._reimport_next_workers_if_changed()
        now = time.time()
        with flushes_held(self.logger):
            for frames in batch:
                reply = self.core.receive(frames, now)
                if reply is not None:
                    self._send([reply])
        # nothing to wait for (invalid messages, answers given before)
        self._send(self.core.sendable(self._committer.busy))
        if self._gather_until and len(self.core.unsent) > self._gather_seen:
            # they are coming back: wait on from this one, up to the limit, so
            # that workers slower to answer than GROUP_COMMIT_WAIT still join
            self._gather_seen = len(self.core.unsent)
            self._gather_until = min(
                self._gather_limit, time.monotonic() + defaults.GROUP_COMMIT_WAIT
            )

    # commits: what is applied goes to disk, then the replies, then the launches

    def _start_commit(self) -> None:
        """Hand what was applied since the last commit to the committer, unless it
        is still writing that one."""
        if not self.core.dirty or self._committer.busy or time.time() < self._retry_commit_at:
            return
        if self._gather_until:
            # a group commit: while messages keep coming, let those from the workers
            # just answered join this commit (GROUP_COMMIT_WAIT, GROUP_COMMIT_MAX_WAIT)
            if len(self.core.unsent) < self._gather_count and time.monotonic() < self._gather_until:
                return
            self._gather_ended()
        try:
            commit = self.core.start_commit(self._checklist_path)
        except Exception as e:  # what was applied cannot be written: no reply goes out
            self.logger.exception("cannot make the bytes of the checklist and state")
            self._write_failed(e)
            return
        self._journal_mark = self._launch_journal.written  # launches this commit holds
        self._commit_started = time.monotonic()
        if commit:
            self._committer.submit(commit)
        else:
            self._committed()

    def _finish_commit(self, finish) -> None:
        """Reply and launch for the commit just written; after a failed write,
        keep the replies for the next commit, which writes everything again."""
        if not self._committer.busy:
            return
        try:
            if not finish():
                return
        except Exception as e:  # whatever failed, no reply goes out
            self.core.commit_failed()
            self._write_failed(e)
            return
        if self._failed_writes:
            self.logger.warning(
                "checklist and state written to disk again, after %d failed tries; "
                "sending the replies held",
                self._failed_writes,
            )
            self._failed_writes = 0
        self._committed()

    def _write_failed(self, error: Exception) -> None:
        """Log a failed commit (once a minute while they go on failing) and try
        again after a delay; the replies stay held."""
        self._failed_writes += 1
        now = time.time()
        if self._failed_writes == 1 or now - self._failure_logged_at >= 60:
            self._failure_logged_at = now
            self.logger.error(
                "cannot write the checklist and state to disk (%s); replies are held, and "
                "writing is tried again every %g s%s",
                error,
                defaults.COMMIT_RETRY_DELAY,
                f" ({self._failed_writes} tries so far)" if self._failed_writes > 1 else "",
            )
        self._retry_commit_at = now + defaults.COMMIT_RETRY_DELAY

    def _committed(self) -> None:
        replies, decided = self.core.committed(self._launch_room(time.time()))
        journal = self._launch_journal
        if journal.written and journal.written == self._journal_mark:
            journal.empty()  # every launch it lists is in the state file now
        self._send(replies)
        self._launch(decided)
        if self._gather_skip:
            self._gather_skip -= 1
        elif (
            len(replies) >= defaults.GROUP_COMMIT_MIN
            and defaults.GROUP_COMMIT_WAIT
            and not self.state.pending  # launches waiting for a commit do not wait more
        ):
            now = time.monotonic()
            self._gather_until = now + defaults.GROUP_COMMIT_WAIT
            self._gather_limit = now + defaults.GROUP_COMMIT_MAX_WAIT
            self._gather_count = len(replies) + len(self.core.unsent)
            self._gather_seen = len(self.core.unsent)

    def _gather_ended(self) -> None:
        """The wait for more messages is over. When the workers just answered did
        not all send again (workers that send one message and exit), the next
        GROUP_COMMIT_SKIP commits do not wait."""
        if len(self.core.unsent) < self._gather_count:
            self._gather_skip = defaults.GROUP_COMMIT_SKIP
        self._gather_until = 0.0

    def _commit_now(self) -> None:
        """Commit what was applied and wait for it (at start and at stop)."""
        self._gather_until = 0.0  # no waiting for more messages now
        self._start_commit()
        self._finish_commit(self._committer.wait)

    def _send(self, replies: list[Reply]) -> None:
        # frame by frame, with the flag as a plain int: send_multipart's checks and
        # flag arithmetic (enum objects) cost about as much as the sends themselves
        send, more = self.socket.send, int(self._zmq.SNDMORE)
        for reply in replies:
            for frame in reply.envelope:
                send(frame, more)
            send(reply.text.encode("utf-8"))

    # launching

    def _launch_room(self, now: float) -> int:
        """How many more workers may start now (``LAUNCH_WINDOW``); the pending
        others are launched after a later commit."""
        self._starting = [
            (when, process)
            for when, process in self._starting
            if now - when < defaults.STARTING_SECONDS and process.poll() is None
        ]
        room = defaults.LAUNCH_WINDOW - len(self._starting)
        # a quarter of the window at a time, not one worker as each exits
        return room if room >= min(len(self.state.pending), defaults.LAUNCH_WINDOW // 4) else 0

    def _launch(self, decided: list) -> None:
        """Launch workers whose launch is on disk (each with its token), note them
        in the launch journal at once, and record them for the next commit."""
        local = []
        for worker, tries, token in decided:
            if not self.batch.handles(worker.host):
                local.append((worker, tries, token))
                continue
            try:
                launched = self.batch.submit(worker, self.core.entry(worker), tries)
            except (OSError, ConfigError) as e:
                self.logger.error("cannot launch %s: %s", worker, e)
                self.core.history.not_launched(worker)
                continue
            self.core.submitted(worker, launched)
        processes = launcher.launch_many(
            [(worker, token) for worker, _, token in local], self.config, self.logger, self.warm
        )
        now = time.time()
        made = []
        for (_, _, token), process in zip(local, processes, strict=True):
            if not isinstance(process, Exception) and not getattr(process, "noted", False):
                process.proc_start = proc_start(process.pid)
                made.append((token, process.pid, process.proc_start, now))
        self._launch_journal.record_many(made)
        for (worker, tries, token), process in zip(local, processes, strict=True):
            if isinstance(process, Exception):
                self.logger.error("cannot launch %s: %s", worker, process)
                self.core.history.not_launched(worker)
                continue
            self.core.launched(worker, process, tries, token, now)
            self._starting.append((now, process))

    def _note_warm_launches(self, launched: list[tuple[str | None, WarmProcess]]) -> None:
        """Note the workers the fork server has just forked in the launch journal;
        it lets them run only after this, so a manager killed at any instant
        leaves none running that the next one would launch again."""
        now = time.time()
        made = []
        for token, process in launched:
            process.proc_start = proc_start(process.pid)
            if token is not None:
                made.append((token, process.pid, process.proc_start, now))
        self._launch_journal.record_many(made)

    # supervision of launched workers

    def supervise(self, now: float) -> None:
        """Stop workers past their timeout; handle workers that exited without
        reporting as crashes; launch retries that are due."""
        if self.warm is not None:
            self.warm.tend()
        supervision = self.state.supervision
        if self.batch.tend(now, supervision.running):
            self.core.dirty = True
        for launched, signum in supervision.overdue(now):
            self.core.dirty = True
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
        for pgid in supervision.groups_to_kill(now):
            self.core.dirty = True
            self.logger.error(
                "process group %s of a worker stopped for its timeout still runs after "
                "the grace period; sending SIGKILL to it",
                pgid,
            )
            kill_group(pgid)
        exited = supervision.poll_exits()
        if any(not w.reported for w in exited) and self.socket.poll(0):
            return  # apply the messages already waiting first: one may be from them
        for launched in exited:
            ssh_said = launcher.ssh_error(launched.stderr_path)
            if launched.reported:
                self.logger.debug(
                    "%s (pid %s) %s after %.1f s",
                    launched.name,
                    launched.pid,
                    describe_exit(launched.exit_code),
                    now - launched.started,
                )
            else:
                why = launched.end_note or (
                    f"ran past its timeout of {launched.timeout} s and was stopped"
                    if launched.term_sent is not None
                    else f"{describe_exit(launched.exit_code)} without reporting to the manager"
                )
                if ssh_said:
                    why += f"; ssh to {launched.host} said: {ssh_said}"
                self.logger.error("%s %s; handling it as a crash", launched.label(), why)
            self.core.worker_gone(launched, now)
        self.core.queue_due_retries(now)
        warm = self.warm
        self.core.history.tick(now, warm.current is not None if warm and warm.enabled else None)
        if self.core.history.has_rows:  # (exits, lateness): with the next commit
            self.core.later = True

    def _describe(self) -> dict:
        """The process's part of a status reply."""
        return {
            "pid": os.getpid(),
            "config file": str(self.config.file),
            "checklist file": self._checklist_path,
            "fork server": self.warm.describe() if self.warm is not None else None,
        }

    # the next workers module

    def _load_next_workers(self, config: Config) -> Any:
        """Import the next workers module ``config`` names, afresh.

        :raises ConfigError: it cannot be imported (the traceback is logged).
        """
        name = config["message registry"]["next workers module"]
        try:
            return import_fresh(name)
        except Exception as e:
            if not (isinstance(e, ModuleNotFoundError) and name.startswith(e.name or "\0")):
                self.logger.exception("cannot import next workers module %s", name)
            raise ConfigError(
                f"{config.file}: key 'message registry: next workers module': cannot "
                f"import {name!r}: {type(e).__name__}: {e}"
            ) from None

    def _use_next_workers(self, config: Config) -> None:
        """Swap in the next workers module imported when ``config`` was validated."""
        validated, module = self._validated
        if validated is not config:
            module = self._load_next_workers(config)
        self._validated = (None, None)
        self.core.next_workers = module
        self._next_workers_stamp = file_stamp(module)
        self.logger.info(
            "next workers module loaded from %s", config["message registry"]["next workers module"]
        )

    def _reimport_next_workers_if_changed(self) -> None:
        stamp = file_stamp(self.core.next_workers)
        if stamp == self._next_workers_stamp:
            return
        self._next_workers_stamp = stamp
        try:
            module = import_fresh(self.config["message registry"]["next workers module"])
        except Exception:
            self.logger.exception(
                "next workers module changed but cannot be re-imported; still using the previous one"
            )
            return
        self.core.next_workers = module
        self.logger.info("next workers module re-imported: its file changed")


def poll_ms(seconds: float, most: int) -> int:
    """The poll's timeout (ms) that wakes the loop once ``seconds`` from now are
    past, and within ``most`` ms: never before (the loop would poll again and
    again until then), at most 1 ms after, and never negative (-1 would wait for
    an event, however long)."""
    return max(0, min(most, int(seconds * 1000) + 1))


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m nowcast.manager config.yaml [--ignore-checklist]``
    (NEMO_Nowcast's ``main()``): run the manager until it is stopped, then exit."""
    run_process(NowcastManager, argv)


run = main  # the entry point's first name


if __name__ == "__main__":
    main()
