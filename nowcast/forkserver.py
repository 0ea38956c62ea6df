"""The fork server: a warm Python process that starts the manager's workers in
milliseconds.

A cold ``python -m pkg.worker`` pays for the interpreter's start and for importing
zmq, yaml, logging.config, argparse and nowcast before the worker's own code runs.
The fork server pays that once: it imports what every worker needs (``PRELOAD``,
never a user's module) and then, for each launch the manager asks for, forks a
child that runs the worker's module as ``python -m`` would. The child is a new
session leader, gets stdin from /dev/null and the manager's stdout and stderr, and
imports the worker's own code fresh.

The server has one thread and no zmq context, ever, so forking it is safe. It
configures no logging: its few words of its own go to its standard error. It
talks to the manager over a socket pair (never stdout or stderr): one JSON object
a line each way. It answers each launch with the child's pid, reaps its children
and reports each one's exit status (negative for a signal, as ``Popen`` does).
Before each fork it checks that no file it imported has changed on disk; if one
has, it refuses, so the manager starts the worker cold and a fresh fork server.
It exits when the manager goes away (end of file on the socket), leaving its
running workers running.

``ForkServer`` is the manager's handle on the process, ``WarmProcess`` its handle
on one worker (what supervision needs of a ``Popen``). ``launcher.WarmStart`` keeps
one fork server going and falls back to ``Popen`` while there is none ready.

Usage (the manager starts it): ``python -m nowcast.forkserver FD CONFIG_FILE``
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any, NoReturn

from nowcast.errors import NowcastError

# What a worker imports on its way to its first message (``python -X importtime -m``
# on a worker lists them), and libraries workers commonly use (NEMO-style workers
# take dates with arrow). Imported once, in the fork server.
PRELOAD = (
    "argparse",
    "json",
    "logging.config",
    "logging.handlers",
    "pathlib",
    "runpy",
    "shutil",
    "subprocess",
    "yaml",
    "zmq",
    "arrow",
    "nowcast.cli",
    "nowcast.config",
    "nowcast.logs",
    "nowcast.message",
    "nowcast.sockets",
    "nowcast.worker",
    "setproctitle",
)


class ForkServerError(NowcastError):
    """The fork server cannot start this worker; start it cold."""


class StaleForkServer(ForkServerError):
    """A file the fork server imported has changed since it started."""


# ---------------------------------------------------------------- the manager's side


class WarmProcess:
    """A worker the fork server started: what supervision needs of a ``Popen``."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
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

    def __init__(self, python: str, config_file: str, logger: logging.Logger) -> None:
        self.python = python
        self.config_file = config_file
        self.logger = logger
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.state = "new"  # starting, ready, retiring, gone
        self.lost = False  # it went away with workers whose exit it had not reported
        self.children: set[int] = set()
        self.exits: dict[int, int] = {}
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

    def launch(self, module: str, args: list[str], cwd: str, timeout: float) -> WarmProcess:
        """Have the server start ``python -m module *args`` in ``cwd``.

        :raises StaleForkServer: a file it imported changed; it starts no more workers.
        :raises ForkServerError: it is not ready, is gone, refused or did not answer.
        """
        self.pump()
        if self.state != "ready":
            raise ForkServerError(f"the fork server is {self.state}")
        request: dict[str, Any] = {"module": module, "args": args, "cwd": cwd}
        if os.environ != self._env:
            request["env"] = dict(os.environ)
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as e:
            self._gone()
            raise ForkServerError(f"cannot reach the fork server: {e}") from None
        reply = self._reply(timeout)
        if "pid" in reply:
            self.children.add(reply["pid"])
            return WarmProcess(self, reply["pid"], [self.python, "-m", module, *args])
        if reply.get("refused") == "stale":
            self.state = "retiring"
            raise StaleForkServer(f"{reply.get('path')} changed since it started")
        raise ForkServerError(f"the fork server refused: {reply.get('refused')}")

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
        deadline = time.monotonic() + timeout
        while not self._replies:
            if self.sock is None:
                raise ForkServerError("the fork server went away before it answered")
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self.sock], [], [], max(0.0, remaining))
            if readable:
                self.pump()
            elif remaining <= 0:
                self.logger.error(
                    "the fork server (pid %s) did not answer within %g s; stopping it",
                    self.pid,
                    timeout,
                )
                self.process.kill()
                self._gone()
                raise ForkServerError("the fork server did not answer in time")
        return self._replies.pop(0)

    def _read(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                said = json.loads(line)
            except ValueError:
                self.logger.error("the fork server said something unreadable: %r", line[:200])
                continue
            if "exit" in said:
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


# ---------------------------------------------------------------- the server


class _Server:
    """The warm process: imports ahead, then forks a child per request."""

    def __init__(self, fd: int) -> None:
        self.control = socket.socket(fileno=fd)
        self.control.setblocking(True)
        self.children: set[int] = set()
        self.retiring = False
        self.stamps: dict[str, tuple | None] = {}
        self.cwd = os.getcwd()
        self.argv0 = sys.orig_argv[0] if sys.orig_argv else sys.executable
        self._buffer = b""
        # SIGCHLD wakes the select() below through this pipe
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.saved_handlers = {signal.SIGCHLD: signal.getsignal(signal.SIGCHLD)}
        signal.signal(signal.SIGCHLD, _ignore)
        signal.set_wakeup_fd(self.wake_w)

    def preload(self) -> list[str]:
        """Import ``PRELOAD``; return the names that could not be imported."""
        import importlib

        skipped = []
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:
                skipped.append(name)
        self.stamps = {path: _stamp(path) for path in _watched_paths()}
        return skipped

    def serve(self) -> int:
        skipped = self.preload()
        threads = _thread_count()
        if threads > 1:
            _say(f"{threads} threads are running after the imports; forking is unsafe, stopping")
            return 3
        self._send({"ready": os.getpid(), "modules": len(sys.modules), "skipped": skipped})
        while not (self.retiring and not self.children):
            readable, _, _ = select.select([self.control, self.wake_r], [], [])
            if self.wake_r in readable:
                _drain(self.wake_r)
            self._reap()
            if self.control in readable:
                data = self.control.recv(65536)
                if not data:
                    return 0  # the manager is gone; running workers keep running
                self._buffer += data
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    self._handle(line)
        return 0

    def _handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if request.get("retire"):
                self.retiring = True
                return
            module, args, cwd = request["module"], request["args"], request["cwd"]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self._send({"refused": f"unreadable request: {e}"})
            return
        if self.retiring:
            self._send({"refused": "retiring"})
            return
        stale = self._stale()
        if stale is not None:
            self.retiring = True
            self._send({"refused": "stale", "path": stale})
            return
        try:
            pid = self._fork(module, args, cwd, request.get("env"))
        except OSError as e:
            self._send({"refused": f"cannot fork: {e}"})
            return
        self.children.add(pid)
        self._send({"pid": pid})

    def _reap(self) -> None:
        """Collect exited children (no zombies) and report each one's exit status."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self._send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _send(self, said: dict) -> None:
        self.control.sendall(json.dumps(said).encode() + b"\n")

    def _stale(self) -> str | None:
        for path, stamp in self.stamps.items():
            if _stamp(path) != stamp:
                return path
        return None

    def _fork(self, module: str, args: list[str], cwd: str, env: dict | None) -> int:
        """Fork a child for the worker; return its pid once it leads its own session."""
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_r)
                os.setsid()
                os.close(ready_w)  # the server reads end of file: the session exists
                self._become_worker(module, args, cwd, env)
            except BaseException:
                import traceback

                traceback.print_exc()
                _flush()
                os._exit(1)
        os.close(ready_w)
        try:
            os.read(ready_r, 1)
        finally:
            os.close(ready_r)
        return pid

    def _become_worker(self, module: str, args: list[str], cwd: str, env: dict | None) -> NoReturn:
        """In the child: undo what is the server's, then run the module as ``__main__``."""
        signal.set_wakeup_fd(-1)
        for signum, handler in self.saved_handlers.items():
            signal.signal(signum, handler)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.control.close()
        os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if not sys.flags.safe_path and sys.path and sys.path[0] == self.cwd:
            sys.path[0] = cwd  # as python -m puts the directory it runs in first
        import importlib

        importlib.invalidate_caches()  # see modules added since the server started
        argv = [self.argv0, "-m", module, *args]
        _retitle(argv)
        sys.orig_argv = argv
        _run_as_main(module, args)


def _run_as_main(module: str, args: list[str]) -> NoReturn:
    """Run ``module`` as ``python -m`` does, then exit as Python would."""
    import builtins
    import runpy
    import types

    sys.argv = ["-m", *args]  # runpy puts the module's file in sys.argv[0]
    main = types.ModuleType("__main__")  # as the interpreter makes it at start
    main.__annotations__ = {}
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    code, interrupted = 0, False
    try:
        # what ``python -m`` itself calls, running in the fresh __main__ above
        runpy._run_module_as_main(module, alter_argv=True)
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException as e:
        if e.__traceback__ is not None:  # the traceback starts where python -m's would
            e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        code, interrupted = 1, isinstance(e, KeyboardInterrupt)
    _finalize()
    if not _flush() and code == 0:
        code = 120  # as Python does when it cannot flush standard output
    if interrupted:  # as Python does for an uncaught Ctrl-C: die by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(code: Any) -> int:
    """The process exit code for ``SystemExit(code)``, as Python computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _finalize() -> None:
    """What Python does at exit before its last flush: wait for non-daemon
    threads, then run the atexit functions."""
    import atexit

    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except Exception:
            pass
    atexit._run_exitfuncs()


def _flush() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            ok = False
    return ok


def _retitle(argv: list[str]) -> None:
    """Show the worker's command line (for ``ps`` and ``top``) in place of the
    server's, as a cold start would."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(" ".join(argv))


def _watched_paths() -> set[str]:
    """What a fresh Python would see differently after an upgrade: the files of
    every imported module, the interpreter, and the site-packages directories
    (a package installed there may bring a ``.pth`` file, read only at start)."""
    import site

    paths = {os.path.realpath(sys.executable)}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            paths.add(path)
    site_dirs = [*site.getsitepackages(), site.getusersitepackages()]
    paths.update(d for d in site_dirs if os.path.isdir(d))
    return paths


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _ignore(signum: int, frame: Any) -> None:
    """SIGCHLD's handler: the wake-up pipe does the work."""


def _say(text: str) -> None:
    print(f"nowcast.forkserver ({os.getpid()}): {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nowcast.forkserver FD CONFIG_FILE``."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        fd = int(argv[0])
    except (IndexError, ValueError):
        _say("usage: python -m nowcast.forkserver FD CONFIG_FILE (the manager starts it)")
        return 2
    try:
        return _Server(fd).serve()
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the manager is gone


if __name__ == "__main__":
    sys.exit(main())
