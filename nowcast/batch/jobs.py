"""Workers run as batch jobs: written, submitted, recorded, polled, timed out.

The manager calls ``submit`` to launch a worker on a batch host and ``tend`` at
each turn of its loop. No batch command is waited for: each runs in the
background with its output in files, and ``tend`` reads it once it has ended, so
a slow scheduler or login node never holds up messages.

Each submission is recorded, durably, before the submit command starts, in
``<checklist file>.manager-jobs/<token>.json``: the worker, its try, the job name
(which holds the token) and, once known, the job id. A manager started after a
crash finds there the jobs its predecessor submitted but had not yet written to
its state, and follows them instead of submitting again (by the job id, or by
the job name when the crash came while the submit command ran).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import secrets
import shlex
import subprocess
import tempfile
import time
from typing import Any

from nowcast import defaults
from nowcast.batch import JobStatus, PollError, SubmitError, hosts
from nowcast.fileutils import atomic_write
from nowcast.race import worker_from_plain, worker_to_plain
from nowcast.supervision import Launched, _alive, proc_start, worker_name
from nowcast.worker import NextWorker

# States of a job that has started on its node (the rest of those not ended wait in the queue).
STARTED = frozenset({"RUNNING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"})


def records_path(checklist_file: str) -> str:
    """The directory of submission records that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-jobs"


class Command:
    """A command started in the background, its output going to files."""

    def __init__(
        self,
        argv: list[str],
        stdin: bytes | None = None,
        timeout: float = defaults.BATCH_COMMAND_TIMEOUT,
        out: str | None = None,
    ) -> None:
        self.argv = argv
        self.tries = 1  # this command's try, when it is tried again (BatchJobs._again)
        self.deadline = time.monotonic() + timeout
        self.timed_out = False
        self.returncode: int | None = None
        self.stdout = self.stderr = ""
        self._out = out or tempfile.mkstemp(prefix="nowcast-batch-", suffix=".out")[1]
        self._err = (
            self._out[: -len(".out")] + ".err" if self._out.endswith(".out") else self._out + ".err"
        )
        self._keep = out is not None
        with (
            tempfile.TemporaryFile() as given,
            open(self._out, "wb") as o,
            open(self._err, "wb") as e,
        ):
            if stdin:
                given.write(stdin)
                given.seek(0)
            self.process = subprocess.Popen(
                argv, stdin=given, stdout=o, stderr=e, start_new_session=True, close_fds=True
            )
        self.pid = self.process.pid

    def done(self) -> bool:
        """Whether it has ended (killed past its time); reads its output then."""
        if self.returncode is not None:
            return True
        code = self.process.poll()
        if code is None:
            if time.monotonic() < self.deadline:
                return False
            self.timed_out = True
            self.process.kill()
            code = self.process.wait()
        self.returncode = code
        self.stdout, self.stderr = _read(self._out), _read(self._err)
        if not self._keep:
            _unlink(self._out)
        _unlink(self._err)
        return True

    @property
    def said(self) -> str:
        text = " ".join(line.strip() for line in self.stderr.splitlines() if line.strip())
        if self.timed_out:
            text = f"no answer in {defaults.BATCH_COMMAND_TIMEOUT:g} s; {text}".rstrip("; ")
        return text[-500:] or f"exit code {self.returncode}"


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class BatchJobs:
    """The manager's batch jobs: submits them and follows them to their end."""

    def __init__(self, checklist_file: str, logger: logging.Logger) -> None:
        self.records = records_path(checklist_file)
        self.logger = logger
        self.hosts: dict[str, hosts.BatchHost] = {}
        self._submits: dict[str, Command] = {}  # token -> sbatch (or a search by name) running
        self._searches: dict[str, Command] = {}  # token -> search by job name after a crash
        self._polls: dict[str, tuple[Command, str, list[str]]] = {}  # host -> (command, kind, ids)
        self._next_poll: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._tails: dict[str, tuple[Command, Launched, JobStatus]] = {}
        self._cancels: list[tuple[Command, str]] = []
        self._poll_failed_logged: dict[str, float] = {}
        self._search_after: dict[str, float] = {}  # token -> when to search for it again
        # hosts a config reload took out, kept while jobs submitted to them are followed
        self._retired: dict[str, hosts.BatchHost] = {}

    def configure(self, config: Any) -> None:
        """Follow the config's batch hosts (already checked). A host the new config
        no longer has takes no new jobs, but the jobs already submitted to it are
        still followed (polled, timed out, cancelled) with its old settings."""
        new = hosts.read(config)
        for name, host in self.hosts.items():
            if name not in new:
                self._retired[name] = host
                self.logger.warning(
                    "batch host %s is no longer in the config: it takes no new jobs; any job "
                    "already submitted to it is followed with its previous settings until it ends",
                    name,
                )
        for name in new:
            self._retired.pop(name, None)
        self.hosts = new

    def _host(self, name: str | None) -> hosts.BatchHost | None:
        """The settings to follow a job on host ``name`` with (a retired host's too)."""
        host = self.hosts.get(name)
        return host if host is not None else self._retired.get(name)

    def handles(self, host: str | None) -> bool:
        return host in self.hosts

    # submitting

    def submit(
        self, worker: NextWorker, entry: dict, tries: int, now: float | None = None
    ) -> Launched:
        """Write the job script and the submission record, start the submit command;
        return the launched worker to watch. Its job id comes with ``tend``."""
        now = time.time() if now is None else now
        host = self.hosts[worker.host]
        name = worker_name(worker.module)
        token = secrets.token_hex(4)
        base = f"{name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-try{tries}-{token}"
        script_path = posixpath.join(host.jobs_directory, f"{base}.sh")
        job = {
            "id": None,
            "token": token,
            "name": f"{name}.{token}",
            "batch": host.system.kind,
            "state": "SUBMITTING",
            "node": "",
            "reason": "",
            "queued since": now,
            "running since": None,
            "restarts": 0,
            "script": script_path,
            "output": posixpath.join(host.jobs_directory, f"{base}.out"),
        }
        options = [*host.options, *entry.get("sbatch options", [])]
        script = self._script(host, worker, job, options, tries, now)
        launched = _launched(worker, entry, tries, now, job)
        os.makedirs(self.records, exist_ok=True)
        if not host.remote:
            os.makedirs(host.jobs_directory, exist_ok=True)
            atomic_write(script_path, script.encode(), sync_dir=False)
        record = {
            "worker": worker_to_plain(worker),
            "tries": tries,
            "submitted": now,
            "job": job,
            "script text": script,
        }
        self._save(token, record)  # on disk before the job can exist
        self._start_submit(host, launched, script.encode())
        self.logger.info(
            "submitting %s to %s as a %s job (script %s)",
            worker,
            host.name,
            host.system.kind,
            script_path,
        )
        return launched

    def _script(
        self,
        host: hosts.BatchHost,
        worker: NextWorker,
        job: dict,
        options: list[str],
        tries: int,
        now: float,
    ) -> str:
        chdir = None if host.remote else os.getcwd()
        run = shlex.join(
            [host.python, "-m", worker.module, host.config_file, *map(str, worker.args)]
        )
        lines = [
            "#!/bin/bash",
            *host.system.directives(job["name"], job["output"], chdir, options),
            f"# {worker_name(worker.module)}, try {tries}, submitted by the nowcast manager at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(now))}",
        ]
        if host.envvars:
            lines.append(f"source {shlex.quote(host.envvars)}")
        lines.append(f"exec {run}")
        return "\n".join(lines) + "\n"

    def _start_submit(self, host: hosts.BatchHost, launched: Launched, script: bytes) -> None:
        job = launched.job
        submit = host.system.submit_command(job["script"])
        if host.remote:
            directory = posixpath.dirname(job["script"])
            argv = host.shell(
                f"mkdir -p {shlex.quote(directory)} && cat > {shlex.quote(job['script'])} "
                f"&& {shlex.join(submit)}"
            )
            stdin = script
        else:
            argv, stdin = submit, None
        command = Command(argv, stdin, out=self._path(job["token"], ".submit.out"))
        self._submits[job["token"]] = command
        self._update_record(job["token"], {"submit pid": [command.pid, proc_start(command.pid)]})

    # following the jobs

    def tend(self, now: float, running: list[Launched]) -> bool:
        """Advance submissions, polls and time-outs of the batch jobs in ``running``;
        mark those that ended as exited. Whether anything of the state changed."""
        changed = False
        jobs = [w for w in running if w.job is not None and not w.exited]
        for launched in jobs:
            if self._host(launched.host) is None:  # a manager started since took it out
                changed |= self._end(
                    launched,
                    f"was submitted to host {launched.host}, which is no longer a batch host "
                    "in the config: its job cannot be followed, so its end is unknown",
                    {"job id": launched.job["id"], "state": "UNKNOWN"},
                )
        jobs = [w for w in jobs if not w.exited]
        for launched in jobs:
            if launched.job["id"] is None:
                changed |= self._tend_submission(launched, now)
        for launched in jobs:
            if launched.job["id"] is not None and not launched.exited:
                changed |= self._tend_timeout(launched, now)
        by_host: dict[str, list[Launched]] = {}
        for launched in jobs:
            token = launched.job["token"]
            if launched.job["id"] is not None and not launched.exited and token not in self._tails:
                by_host.setdefault(launched.host, []).append(launched)
        for host, watched in by_host.items():
            changed |= self._tend_poll(host, watched, now)
        for token, (command, launched, status) in list(self._tails.items()):
            if command.done():
                what = f"read the end of {launched.name}'s output (job {launched.job['id']})"
                again = self._again(command, what)
                if again is not None:
                    self._tails[token] = (again, launched, status)
                    continue
                del self._tails[token]
                unread = None if command.returncode == 0 else command.said
                self._finish(launched, status, command.stdout, unread)
                changed = True
        for command, what in list(self._cancels):
            if command.done():
                self._cancels.remove((command, what))
                again = self._again(command, what)
                if again is not None:
                    self._cancels.append((again, what))
                elif command.returncode != 0:
                    self.logger.error("%s failed: %s", what, command.said)
        if self._retired:
            followed = {w.host for w in jobs if not w.exited}
            followed.update(launched.host for _, launched, _ in self._tails.values())
            for name in set(self._retired) - followed:
                del self._retired[name]
                self.logger.info("batch host %s, no longer in the config, has no job left", name)
        return changed

    def _again(self, command: Command, what: str) -> Command | None:
        """The same command started again when ssh itself failed (exit status 255:
        the connection refused or lost, the command not run), up to
        ``BATCH_SSH_TRIES`` tries in all; None otherwise."""
        if command.returncode != 255 or command.tries >= defaults.BATCH_SSH_TRIES:
            return None
        self.logger.warning(
            "cannot %s through ssh: %s; trying again (try %d of %d)",
            what,
            command.said,
            command.tries + 1,
            defaults.BATCH_SSH_TRIES,
        )
        again = Command(command.argv)
        again.tries = command.tries + 1
        return again

    def _tend_submission(self, launched: Launched, now: float) -> bool:
        job = launched.job
        token = job["token"]
        host = self._host(launched.host)
        assert host is not None  # (tend ended the jobs of hosts it cannot follow)
        search = self._searches.get(token)
        if search is not None:
            return self._tend_search(launched, host, search)
        if now < self._search_after.get(token, 0.0):
            return False
        command = self._submits.get(token)
        if command is None:  # submitted by a manager that stopped before it knew the outcome
            record = self._load(token) or {}
            pid, start = (record.get("submit pid") or [None, None])[:2]
            if pid and _alive(pid, start):
                return False  # its submit command still runs; its output will tell
            out = _read(self._path(token, ".submit.out"))
            try:
                return self._submitted(launched, host.system.read_submit(0, out, ""))
            except SubmitError:
                return self._search(launched, host)
        if not command.done():
            return False
        del self._submits[token]
        if command.timed_out or (host.remote and command.returncode == 255):
            # no answer, or ssh lost the connection: the job may exist all the same
            return self._search(launched, host)
        try:
            job_id = host.system.read_submit(command.returncode, command.stdout, command.stderr)
        except SubmitError as e:
            _unlink(self._path(token, ".submit.out"))
            self._remove(token)
            self.logger.error("%s could not be submitted to %s: %s", launched.name, host.name, e)
            return self._end(
                launched,
                f"was refused by the batch system of {host.name}: {e}",
                {
                    "state": "REFUSED",
                    "job id": None,
                    "submit error": str(e),
                    "script": job["script"],
                },
            )
        return self._submitted(launched, job_id)

    def _submitted(self, launched: Launched, job_id: str) -> bool:
        job = launched.job
        job.update(id=job_id, state="PENDING")
        self._update_record(job["token"], {"job": job})
        _unlink(self._path(job["token"], ".submit.out"))
        self.logger.info(
            "%s submitted to %s as job %s (output %s)",
            launched.name,
            launched.host,
            job_id,
            job["output"],
        )
        self._poll_soon(launched.host)
        return True

    def _search(self, launched: Launched, host: hosts.BatchHost) -> bool:
        """Look the job up by its name: whether a submit whose outcome was lost made it."""
        argv = host.command(host.system.find_command(launched.job["name"]))
        self._searches[launched.job["token"]] = Command(argv)
        return False

    def _tend_search(self, launched: Launched, host: hosts.BatchHost, search: Command) -> bool:
        if not search.done():
            return False
        token = launched.job["token"]
        del self._searches[token]
        try:
            found = host.system.read_find(search.returncode, search.stdout, search.stderr)
        except PollError as e:
            host_interval = host.poll_interval
            self.logger.warning(
                "cannot tell whether job %s of %s was submitted (%s); asking again in %g s",
                launched.job["name"],
                launched.name,
                e,
                host_interval,
            )
            self._search_after[token] = time.time() + host_interval
            return False
        if found:
            self.logger.warning(
                "found job %s (%s) of %s, submitted before its id was known; following it",
                found[0],
                launched.job["name"],
                launched.name,
            )
            return self._submitted(launched, found[0])
        self.logger.warning(
            "%s's job %s was never submitted (the submission was cut short); submitting it now",
            launched.name,
            launched.job["name"],
        )
        record = self._load(token) or {}
        self._start_submit(host, launched, record.get("script text", "").encode())
        return False

    def _tend_timeout(self, launched: Launched, now: float) -> bool:
        job = launched.job
        host = self._host(launched.host)
        assert host is not None  # (tend ended the jobs of hosts it cannot follow)
        if launched.term_sent is None:
            why = None
            if launched.timeout is not None and now - launched.started >= launched.timeout:
                why = f"ran past its timeout of {launched.timeout:g} s (time in the queue included)"
            elif (
                launched.queue_timeout is not None
                and job["state"] not in STARTED
                and now - job["queued since"] >= launched.queue_timeout
            ):
                why = f"waited in the queue past its queue timeout of {launched.queue_timeout:g} s"
            if why is None:
                return False
            job["cancelled because"] = why
            launched.term_sent = now
            if job["state"] in STARTED:
                self.logger.error(
                    "%s (job %s on %s) %s; sending it SIGTERM, then cancelling it %g s later",
                    launched.name,
                    job["id"],
                    launched.host,
                    why,
                    launched.grace,
                )
                self._cancel(host, job["id"], "TERM")
            else:
                launched.kill_sent = now
                self.logger.error(
                    "%s (job %s on %s) %s; cancelling it",
                    launched.name,
                    job["id"],
                    launched.host,
                    why,
                )
                self._cancel(host, job["id"])
            self._poll_soon(launched.host)
            return True
        if launched.kill_sent is None and now - launched.term_sent >= launched.grace:
            launched.kill_sent = now
            self.logger.error(
                "%s (job %s) still running %g s after SIGTERM; cancelling it",
                launched.name,
                job["id"],
                launched.grace,
            )
            self._cancel(host, job["id"])
            self._poll_soon(launched.host)
            return True
        return False

    def _cancel(self, host: hosts.BatchHost, job_id: str, signal: str | None = None) -> None:
        argv = host.command(host.system.cancel_command(job_id, signal))
        self._cancels.append((Command(argv), f"cancelling job {job_id} on {host.name}"))

    def _poll_soon(self, host: str) -> None:
        self._delay[host] = defaults.BATCH_FIRST_POLL
        self._next_poll[host] = min(
            self._next_poll.get(host, 0.0), time.time() + defaults.BATCH_FIRST_POLL
        )

    def _tend_poll(self, name: str, watched: list[Launched], now: float) -> bool:
        host = self._host(name)
        assert host is not None  # (tend ended the jobs of hosts it cannot follow)
        in_flight = self._polls.get(name)
        if in_flight is None:
            if now < self._next_poll.get(name, 0.0):
                return False
            ids = sorted({w.job["id"] for w in watched})
            self._polls[name] = (Command(host.command(host.system.poll_command(ids))), "poll", ids)
            return False
        command, kind, ids = in_flight
        if not command.done():
            return False
        del self._polls[name]
        delay = self._delay.get(name, defaults.BATCH_FIRST_POLL)
        if any(w.reported for w in watched):
            delay = defaults.BATCH_FIRST_POLL  # its job ends any moment now
        self._delay[name] = min(delay * 2, host.poll_interval)
        self._next_poll[name] = now + min(delay, host.poll_interval)
        try:
            if kind == "poll":
                statuses = host.system.read_poll(command.returncode, command.stdout, command.stderr)
            else:
                statuses = host.system.read_history(
                    command.returncode, command.stdout, command.stderr
                )
        except PollError as e:
            if kind == "poll":
                if now - self._poll_failed_logged.get(name, 0.0) >= 60:
                    self._poll_failed_logged[name] = now
                    self.logger.error("cannot ask %s about its jobs: %s; asking again", name, e)
                self._next_poll[name] = now + host.poll_interval
                return False
            statuses = {}  # no history (accounting off): the jobs are gone without a trace
        self._poll_failed_logged.pop(name, None)
        changed = False
        missing = []
        for launched in watched:
            status = statuses.get(launched.job["id"])
            if launched.job["id"] not in ids:
                continue
            if status is None:
                missing.append(launched)
                continue
            changed |= self._update(launched, status, host, now)
        if missing and kind == "poll":
            history = host.system.history_command([w.job["id"] for w in missing])
            if history is not None:
                self._polls[name] = (
                    Command(host.command(history)),
                    "history",
                    [w.job["id"] for w in missing],
                )
                self._next_poll[name] = now
                return changed
        for launched in missing:
            gone = JobStatus(launched.job["id"], "UNKNOWN", True, launched.job["node"])
            changed |= self._update(launched, gone, host, now)
        return changed

    def _update(
        self, launched: Launched, status: JobStatus, host: hosts.BatchHost, now: float
    ) -> bool:
        job = launched.job
        old, old_restarts = job["state"], job.get("restarts", 0)
        job.update(
            state=status.state, node=status.node, reason=status.reason, restarts=status.restarts
        )
        if status.restarts > old_restarts:
            self.logger.warning(
                "job %s of %s was requeued by %s (restart %d); following it, as the same try",
                job["id"],
                launched.name,
                host.name,
                status.restarts,
            )
            job["queued since"], job["running since"] = now, None
        if status.state in STARTED and job["running since"] is None:
            job["running since"] = now
            self.logger.info(
                "%s (job %s) running on %s after %.1f s in the queue",
                launched.name,
                job["id"],
                status.node or host.name,
                now - job["queued since"],
            )
        if status.ended:
            self._ended(launched, status, host)
            return True
        if status.state != old:
            self._poll_soon(launched.host)
            return True
        return False

    def _ended(self, launched: Launched, status: JobStatus, host: hosts.BatchHost) -> None:
        if launched.reported:
            self._finish(launched, status, "")
        elif host.remote:
            tail = ["tail", "-n", str(defaults.BATCH_OUTPUT_LINES), launched.job["output"]]
            self._tails[launched.job["token"]] = (Command(host.command(tail)), launched, status)
        else:
            self._finish(launched, status, *_tail(launched.job["output"]))

    def _finish(
        self, launched: Launched, status: JobStatus, output: str, unread: str | None = None
    ) -> None:
        """Mark a job that ended without its worker reporting as exited, with a note
        of how it ended and the last lines of its output (``unread``: why that
        output could not be read)."""
        job = launched.job
        self._remove(job["token"])
        code = -status.signal if status.signal else status.exit_code
        lines = [line for line in output.splitlines() if line.strip()][
            -defaults.BATCH_OUTPUT_LINES :
        ]
        ended = f"job {job['id']} ended {status.state}"
        if status.signal:
            ended += f" (signal {status.signal})"
        elif status.exit_code is not None:
            ended += f" (exit code {status.exit_code})"
        if job["node"]:
            ended += f" on {job['node']}"
        why = job.get("cancelled because")
        if why:
            note = f"{why} and was cancelled: {ended}"
        elif status.state == "UNKNOWN":
            note = f"ended without reporting to the manager: {host_says_gone(job['id'])}"
        else:
            note = f"{ended} without reporting to the manager"
        if lines:
            note += "; its output ends: " + " | ".join(line.strip() for line in lines[-3:])
        elif unread:
            note += f"; its output could not be read ({job['output']}: {unread})"
        launched.exited = True
        launched.exit_code = code
        launched.end_note = note
        launched.end_payload = {
            "job id": job["id"],
            "state": status.state,
            "exit code": status.exit_code,
            "signal": status.signal,
            "node": job["node"],
            "reason": status.reason,
            "output": "\n".join(lines),
            "output file": job["output"],
        }
        if unread:
            launched.end_payload["output unread"] = unread

    def _end(self, launched: Launched, note: str, payload: dict) -> bool:
        launched.exited = True
        launched.end_note = note
        launched.end_payload = payload
        return True

    # re-attaching after a restart

    def reattach(self, pending: list, running: list[Launched], registry: dict) -> bool:
        """Follow the jobs a previous manager submitted: those in its state, and those
        it recorded but had not yet written there (taken out of ``pending``).
        Whether the state changed."""
        records = self._load_all()
        changed = False
        known = {w.job["token"] for w in running if w.job is not None}
        for launched in running:
            if launched.job is None:
                continue
            record = records.get(launched.job["token"])
            if launched.job["id"] is None and record and record["job"].get("id"):
                launched.job.update(id=record["job"]["id"], state="PENDING")
                changed = True
            self.logger.info(
                "following %s's job %s on %s (%s)",
                launched.name,
                launched.job["id"] or launched.job["name"],
                launched.host,
                launched.job["state"],
            )
        for token, record in records.items():
            if token in known:
                continue
            worker = worker_from_plain(record["worker"])
            tries = record.get("tries", 1)
            index = next(
                (i for i, p in enumerate(pending) if p[0] == worker and p[1] == tries), None
            )
            if index is None:
                self.logger.warning(
                    "a record of job %s (%s) that the manager's state does not know: not following it",
                    record["job"].get("id") or record["job"]["name"],
                    worker,
                )
                self._remove(token)
                continue
            del pending[index]
            job = record["job"]
            if job.get("id") and job.get("state") == "SUBMITTING":
                job["state"] = "PENDING"
            entry = registry.get(worker_name(worker.module), {})
            launched = _launched(
                worker, entry if isinstance(entry, dict) else {}, tries, record["submitted"], job
            )
            running.append(launched)
            changed = True
            self.logger.warning(
                "%s was submitted (job %s) before the previous manager stopped; following it "
                "instead of submitting it again",
                worker,
                job.get("id") or job["name"],
            )
        return changed

    # submission records

    def _path(self, token: str, suffix: str = ".json") -> str:
        return os.path.join(self.records, f"{token}{suffix}")

    def _save(self, token: str, record: dict) -> None:
        os.makedirs(self.records, exist_ok=True)
        atomic_write(self._path(token), json.dumps(record, ensure_ascii=False).encode())

    def _load(self, token: str) -> dict | None:
        try:
            with open(self._path(token), "rb") as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return None

    def _update_record(self, token: str, changes: dict[str, Any]) -> None:
        record = self._load(token)
        if record is not None:
            record.update(changes)
            self._save(token, record)

    def _load_all(self) -> dict[str, dict]:
        try:
            names = os.listdir(self.records)
        except FileNotFoundError:
            return {}
        records = {}
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                record = self._load(name[: -len(".json")])
                if isinstance(record, dict) and "job" in record and "worker" in record:
                    records[name[: -len(".json")]] = record
        return records

    def _remove(self, token: str) -> None:
        _unlink(self._path(token))


def _launched(worker: NextWorker, entry: dict, tries: int, started: float, job: dict) -> Launched:
    return Launched(
        worker.module,
        [str(a) for a in worker.args],
        worker.host,
        None,
        started,
        tries,
        entry.get("timeout"),
        entry.get("timeout grace", defaults.TIMEOUT_GRACE),
        job=job,
        queue_timeout=entry.get("queue timeout"),
    )


def host_says_gone(job_id: str) -> str:
    return f"the batch system no longer knows job {job_id}, so its end is unknown"


def _tail(path: str, lines: int = defaults.BATCH_OUTPUT_LINES) -> tuple[str, str | None]:
    """The last ``lines`` lines of the file at ``path``, and why not if it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8000))
            text = f.read().decode(errors="replace")
    except OSError as e:
        return "", e.strerror or str(e)
    return "\n".join(text.splitlines()[-lines:]), None
