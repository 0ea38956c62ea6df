"""The manager's side of the fork server (``nowcast.forkserver``).

``ForkServer`` is the manager's handle on one fork server process: it starts it,
asks it to start workers (one JSON object a line over a socket pair) and reads
what it says (ready, a worker's pid, a worker's exit status). ``WarmProcess`` is
its handle on one worker started that way: what supervision needs of a ``Popen``.
``launcher.WarmStart`` keeps one fork server going and falls back to a cold start
while there is none ready.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from nowcast.errors import NowcastError


class ForkServerError(NowcastError):
    """The fork server cannot start this worker; start it cold."""


class StaleForkServer(ForkServerError):
    """A file the fork server imported has changed since it started."""


class UnresponsiveForkServer(ForkServerError):
    """The fork server is stopped or did not answer in time; it was killed."""


class WarmProcess:
    """A worker the fork server started: what supervision needs of a ``Popen``."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self.noted = False  # by the ``note`` of its server, before it ran
        self._server = server

    @property
    def lost(self) -> bool:
        """Whether its fork server died before reporting its exit: watch it by pid."""
        return self.returncode is None and self._server.lost

    def poll(self) -> int | None:
        if self.returncode is None:
            self._server.pump()
            self.returncode = self._server.exits.pop(self.pid, None)
        return self.returncode

    def __repr__(self) -> str:
        return f"<WarmProcess pid={self.pid} returncode={self.returncode}>"


class ForkServer:
    """The manager's handle on one fork server process."""

    def __init__(
        self,
        python: str,
        config_file: str,
        logger: logging.Logger,
        note: Callable[[list[tuple[str | None, WarmProcess]]], None] | None = None,
    ) -> None:
        """``note`` is called with the ``(token, process)`` of the workers of each
        request once they are forked and before they run (the manager writes them
        in its launch journal there)."""
        self.python = python
        self.config_file = config_file
        self.logger = logger
        self.note = note
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.state = "new"  # starting, ready, retiring, gone
        self.lost = False  # it went away with workers whose exit it had not reported
        self.children: set[int] = set()
        self.exits: dict[int, int] = {}
        self.spare: int | None = None  # the child the server has forked ahead, its pid
        self._replies: list[dict] = []
        self._buffer = b""
        self._env: dict[str, str] = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Start the server process without waiting for its imports.

        :raises OSError: the interpreter cannot be run.
        """
        ours, theirs = socket.socketpair()
        self._env = dict(os.environ)
        cmd = [
            self.python,
            "-m",
            "nowcast.forkserver",
            str(theirs.fileno()),
            self.config_file,
        ]
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # no terminal's Ctrl-C; it stops on end of file
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.state = "starting"

    def pump(self) -> None:
        """Read whatever the server has said, without waiting."""
        while self.sock is not None:
            try:
                readable, _, _ = select.select([self.sock], [], [], 0)
                if not readable:
                    return
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._gone()
                return
            self._read(data)

    def launch(
        self,
        module: str,
        args: list[str],
        cwd: str,
        timeout: float,
        env: dict | None = None,
        token: str | None = None,
    ) -> WarmProcess:
        """Have the server start ``python -m module *args`` in ``cwd``, in ``env``
        (default: the manager's environment), with the launch ``token`` added to it.

        :raises StaleForkServer: a file it imported changed; it starts no more workers.
        :raises UnresponsiveForkServer: it is stopped or did not answer in time: it
            was killed, and started no worker (a worker it had forked exits unrun).
        :raises ForkServerError: it is not ready, is gone or refused.
        """
        return self._request([(module, args, token)], cwd, timeout, env, batch=False)[0]

    def launch_many(
        self, launches: list[tuple[str, list[str], str | None]], cwd: str, timeout: float
    ) -> list[WarmProcess]:
        """Have the server start each ``(module, args, token)`` of ``launches``, in one
        request, in the manager's environment; the processes of the first ones, all
        of them unless the server could fork only some (the rest are to start cold).

        :raises: as ``launch``, when it started none.
        """
        return self._request(launches, cwd, timeout, None, batch=True)

    def _request(
        self,
        launches: list[tuple[str, list[str], str | None]],
        cwd: str,
        timeout: float,
        env: dict | None,
        batch: bool,
    ) -> list[WarmProcess]:
        self.pump()
        if self.state != "ready":
            raise ForkServerError(f"the fork server is {self.state}")
        if self._stopped():
            self._kill()
            raise UnresponsiveForkServer(f"the fork server (pid {self.pid}) is stopped")
        if env is None and os.environ != self._env:
            env = dict(os.environ)  # the server's own would be out of date
        items = []
        for module, args, token in launches:
            item: dict[str, Any] = {"module": module, "args": args, "cwd": cwd}
            if env is not None:
                item["env"] = env
            if token is not None:
                item["token"] = token
            items.append(item)
        request = {"launch": items} if batch else items[0]
        early = self._note_ahead(*launches[0])
        if early is not None:
            request["noted"] = early.pid
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as e:
            self._gone()
            raise ForkServerError(f"cannot reach the fork server: {e}") from None
        reply = self._reply(timeout)
        pids = reply.get("pids", []) if batch else [reply["pid"]] if "pid" in reply else []
        processes = []
        tokens = []
        for pid, (module, args, token) in zip(pids, launches, strict=False):
            self.children.add(pid)
            if early is not None and pid == early.pid:
                processes.append(early)  # noted already, and running
            else:
                processes.append(WarmProcess(self, pid, [self.python, "-m", module, *args]))
            tokens.append(token)
        if processes:
            waiting = [(t, p) for t, p in zip(tokens, processes, strict=True) if p is not early]
            if waiting:
                if self.note is not None:
                    self.note(waiting)
                    for _, process in waiting:
                        process.noted = True
                self._go()
            return processes
        if reply.get("refused") == "stale":
            self.state = "retiring"
            raise StaleForkServer(f"{reply.get('path')} changed since it started")
        raise ForkServerError(f"the fork server refused: {reply.get('refused')}")

    def _note_ahead(self, module: str, args: list[str], token: str | None) -> WarmProcess | None:
        """Note the launch ``(module, args, token)`` as the child the server has
        forked ahead, before asking for it: the server then lets that child run
        the worker at once, without waiting for the word to go. None when there is
        no such child known (or nothing to note it in); the server tells of the
        next one after each request."""
        spare, self.spare = self.spare, None
        if spare is None or self.note is None or token is None:
            return None
        process = WarmProcess(self, spare, [self.python, "-m", module, *args])
        self.note([(token, process)])
        process.noted = True
        return process

    def _go(self) -> None:
        """Let the workers the server has just forked run: they are noted. (A server
        gone by now has left them unrun.)"""
        if self.sock is None:
            return
        try:
            self.sock.sendall(b'{"go": true}\n')
        except OSError:
            self._gone()

    def retire(self) -> None:
        """Start no more workers; exit once those started have exited."""
        if self.sock is None or self.state == "gone":
            return
        self.state = "retiring"
        try:
            self.sock.sendall(b'{"retire": true}\n')
        except OSError:
            self._gone()

    def close(self, wait: float = 1.0) -> None:
        """Hang up: the server exits and leaves its running workers running."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.state = "gone"

    # reading the server

    def _reply(self, timeout: float) -> dict:
        """The server's answer to a request. After ``FORK_SERVER_PATIENCE`` without
        one, a stopped server (SIGSTOP) is killed at once; a server that does not
        answer within ``timeout`` is killed too. Either way, an answer it had
        already sent is still taken."""
        from nowcast.defaults import FORK_SERVER_PATIENCE

        start = time.monotonic()
        checked = False
        while not self._replies:
            if self.sock is None:
                raise ForkServerError("the fork server went away before it answered")
            waited = time.monotonic() - start
            wait = timeout - waited if checked else min(timeout, FORK_SERVER_PATIENCE) - waited
            readable, _, _ = select.select([self.sock], [], [], max(0.0, wait))
            if readable:
                self.pump()
                continue
            if not checked and waited < timeout and not self._stopped():
                checked = True  # working, only slow: give it the whole timeout
                continue
            why = "is stopped" if not checked else f"did not answer within {timeout:g} s"
            self.logger.error("the fork server (pid %s) %s; killing it", self.pid, why)
            self._kill()
            if self._replies and ("pid" in self._replies[0] or "pids" in self._replies[0]):
                return self._replies.pop(0)  # it answered before it died
            raise UnresponsiveForkServer(f"the fork server {why}")
        return self._replies.pop(0)

    def _stopped(self) -> bool:
        """Whether the server process is stopped (SIGSTOP, a debugger) or dead."""
        if self.process is None:
            return False
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[-1].split()[0]
        except (OSError, IndexError):
            return False
        return state in (b"T", b"t", b"Z", b"X")

    def _kill(self) -> None:
        """Kill the server (a stopped one too) and read what it said before it died:
        a worker it forked but did not answer for exits without running."""
        if self.process is not None:
            self.process.kill()
            try:
                self.process.wait(1)
            except subprocess.TimeoutExpired:
                pass
        if self.sock is not None:
            self.sock.settimeout(0.5)
            try:
                while data := self.sock.recv(65536):
                    self._read(data)
            except OSError:
                pass
        self._gone()

    def _read(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                said = json.loads(line)
            except ValueError:
                self.logger.error("the fork server said something unreadable: %r", line[:200])
                continue
            if "spare" in said:
                self.spare = said["spare"]
            elif "exit" in said:
                pid = said["exit"]
                self.exits[pid] = said["code"]
                self.children.discard(pid)
            elif "ready" in said:
                self.state = "ready"
                self.logger.info(
                    "fork server (pid %s) ready: %d modules imported ahead for workers",
                    self.pid,
                    said.get("modules", 0),
                )
                if said.get("skipped"):
                    self.logger.debug(
                        "the fork server could not import %s", ", ".join(said["skipped"])
                    )
            else:
                self._replies.append(said)

    def _gone(self) -> None:
        """The server closed its end: note how it ended, once."""
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        was, self.state = self.state, "gone"
        self.lost = bool(self.children)
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(1)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        if was == "retiring" and not self.children:
            self.logger.debug("retired fork server (pid %s) exited", self.pid)
            return
        from nowcast.supervision import describe_exit

        self.logger.error(
            "the fork server (pid %s) %s%s%s",
            self.pid,
            describe_exit(code),
            " before it was ready (its error is in the manager's standard error)"
            if was == "starting"
            else "",
            "" if was == "retiring" else "; starting workers cold",
        )
        if self.children:
            self.logger.warning(
                "%d worker(s) the fork server (pid %s) started are watched by pid from now "
                "on; their exit codes are unknown: %s",
                len(self.children),
                self.pid,
                ", ".join(str(pid) for pid in sorted(self.children)),
            )
