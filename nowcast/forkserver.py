"""The fork server: a warm Python process that starts the manager's workers in
milliseconds.

A cold ``python -m pkg.worker`` pays for the interpreter's start and for importing
zmq, yaml, logging.config, argparse and nowcast before the worker's own code runs.
The fork server pays that once: it imports what every worker needs (``PRELOAD``,
never a user's module) and then, for each launch the manager asks for, forks a
child that runs the worker's module as ``python -m`` would. The child is a new
session leader, gets stdin from /dev/null and the manager's stdout and stderr, and
imports the worker's own code fresh. It parses the manager's config file ahead
too: a worker that loads that file while it is unchanged skips parsing it.

The server has one thread and no zmq context, ever, so forking it is safe. It
configures no logging: its few words of its own go to its standard error. It
talks to the manager over a socket pair (never stdout or stderr): one JSON object
a line each way. A request is one launch or a batch of them (the workers one
commit decided); it answers with the children's pids, and lets them run the
workers once the manager says it has noted them (``{"go": true}``); it reaps its
children and reports each one's exit status (negative for a signal, as ``Popen``
does). It keeps one child forked ahead of the next launch, which rehearses a
worker's start while it waits, so the fork and the copies of the memory pages a
worker's start writes to are off the launch's path. The server rehearses that start
itself too, before it says it is ready (``SERVER_WARM_UPS``). Before the launches of
each request it checks that no file it imported has changed on disk; if one has, it
refuses, so the manager starts the workers cold and a fresh fork server. A worker's
environment is the manager's (the server's own, or the one the request carries) with
the launch's token added. It exits when the manager goes away (end of file on the
socket), leaving its running workers running.

The manager's side of the conversation is ``nowcast.forkclient``.

Usage (the manager starts it): ``python -m nowcast.forkserver FD CONFIG_FILE``
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any, NoReturn

from nowcast.defaults import LAUNCH_TOKEN_ENV

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
    "nowcast.zmtp",
    "setproctitle",
)


class _Server:
    """The warm process: imports ahead, then forks a child per request."""

    def __init__(self, fd: int, config_file: str | None = None) -> None:
        self.control = socket.socket(fileno=fd)
        self.config_file = config_file
        self._listed = 0  # modules imported when import caches were last invalidated
        self.control.setblocking(True)
        self.children: set[int] = set()
        self.spare: tuple[int, int, int] | None = None  # (pid, ready_r, go_w), see _make_spare
        self.unreported: set[int] = set()  # spares let go unused: their exits are not news
        self.retiring = False
        self.stamps: dict[str, tuple | None] = {}
        self.changes: _Changes | None = None  # inotify on their directories, where it works
        self._checked_at = 0.0  # (monotonic) when every stamp was last compared
        self.changes_found: str | None = None  # by a comparison after a launch
        self.cwd = os.getcwd()
        self.argv0 = sys.orig_argv[0] if sys.orig_argv else sys.executable
        self._buffer = b""
        self._lines: list[bytes] = []  # received, not yet handled
        self._hung_up = False
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
        paths = _watched_paths()
        self.changes = _Changes.open(paths)  # before the stamps: no change falls between
        self.stamps = {path: _stamp(path) for path in paths}
        self._checked_at = time.monotonic()
        self._parse_config()
        _rehearse()
        for _ in range(SERVER_WARM_UPS):
            _warm_up(self.config_file, retitle=False)
        return skipped

    def _parse_config(self) -> None:
        """Parse the manager's config file ahead, for the workers forked from here
        (each still reads the file, and parses it if its text has changed)."""
        if self.config_file is not None and "nowcast.config" in sys.modules:
            sys.modules["nowcast.config"].parse_ahead(self.config_file)

    def serve(self) -> int:
        skipped = self.preload()
        threads = _thread_count()
        if threads > 1:
            _say(f"{threads} threads are running after the imports; forking is unsafe, stopping")
            return 3
        self._send({"ready": os.getpid(), "modules": len(sys.modules), "skipped": skipped})
        while not (self.retiring and not self.children):
            if self.spare is None and not self.retiring:
                self._make_spare()
            readable, _, _ = select.select([self.control, self.wake_r], [], [])
            if self.wake_r in readable:
                _drain(self.wake_r)
            self._reap()
            if self.control in readable:
                if not self._receive():
                    return 0  # the manager is gone; running workers keep running
                while self._lines:
                    self._handle(self._lines.pop(0))
                    if self._hung_up:
                        return 0
        return 0

    def _receive(self) -> bool:
        """Read what the manager sent into ``_lines``; False at end of file."""
        data = self.control.recv(65536)
        if not data:
            self._hung_up = True
            return False
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        self._lines += lines
        return True

    def _told_to_go(self) -> bool:
        """Wait for the manager's word that it has noted the pids just sent (in its
        launch journal, which outlives it); only then do their workers run. The
        manager gone, or a line that is not that word, leaves them unrun."""
        while not self._lines:
            if not self._receive():
                return False
        try:
            said = json.loads(self._lines[0])
        except ValueError:
            return False
        if isinstance(said, dict) and said.get("go") is True:
            self._lines.pop(0)
            return True
        return False  # the line is handled as any other

    def _handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if request.get("retire"):
                self.retiring = True
                if self.spare is not None:
                    self._let_go(*self.spare)
                    self.spare = None
                return
            batch = request.get("launch")
            launches = [_launch_request(r) for r in (batch if batch is not None else [request])]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self._send({"refused": f"unreadable request: {e}"})
            return
        if self.retiring:
            self._send({"refused": "retiring"})
            return
        self._refresh_import_caches()
        pids: list[int] = []
        gos: list[int] = []
        held: list[int] = []  # this request's pipe ends, which a later child must close
        refused = None
        spare, self.spare = self.spare, None
        if spare is not None:  # the first launch goes to the child forked ahead
            pid, ready, go = spare
            try:
                _write_all(go, _spec(*launches[0]))  # it gets ready while the files are checked
            except OSError:  # it died waiting (killed): forked afresh below
                self._let_go(*spare)
                spare = None
        stale = self.changes_found or self._stale()  # once for a batch
        if stale is not None:
            self.retiring = True
            if spare is not None:
                _write_quietly(go, b"x")  # it has its launch: this word ends it unrun
                self._let_go(*spare)
            self._send({"refused": "stale", "path": stale})
            return
        early = spare is not None and request.get("noted") == pid
        if early:  # the manager noted it before it asked: it runs now
            os.write(go, b"g")
        self._parse_config()
        try:
            if spare is not None:
                self.children.add(pid)
                pids.append(pid)
                if not early:
                    gos.append(go)
                held += (ready, go)
                launches = launches[1:]
            for module, args, cwd, env, token in launches:
                try:
                    pid, ready, go = self._fork(held)
                except OSError as e:
                    refused = f"cannot fork: {e}"
                    break
                _write_quietly(go, _spec(module, args, cwd, env, token))  # (dead: reaped)
                self.children.add(pid)
                pids.append(pid)
                gos.append(go)
                held += (ready, go)
            for ready in held[::2]:  # each child leads its own session: they got there together
                os.read(ready, 1)
            if batch is None:
                self._send({"pid": pids[0]} if pids else {"refused": refused})
            else:  # fewer pids than launches: the rest are refused
                self._send({"pids": pids, **({"refused": refused} if refused else {})})
            if gos and self._told_to_go():  # so no worker runs the manager has not noted
                for go in gos:
                    os.write(go, b"g")
            if pids and time.monotonic() - self._checked_at > RECHECK_AFTER / 2:
                # off the next launch's path; a change found is refused then
                self.changes_found = self._compare_stamps()
        finally:
            for fd in held:
                os.close(fd)

    def _refresh_import_caches(self) -> None:
        """Before a fork: the directories listed on the way to the modules imported
        here are listed again by each worker (this process imports nothing more),
        so it sees modules added since."""
        if len(sys.modules) != self._listed:
            import importlib

            importlib.invalidate_caches()
            self._listed = len(sys.modules)

    def _make_spare(self) -> None:
        """Fork a child ahead of the next launch, while nothing waits for it: the
        fork, and the copies of the pages a worker's start writes to (made by
        rehearsing that start, ``_warm_up``), are then off a launch's path."""
        self._refresh_import_caches()
        try:
            self.spare = self._fork([], warm=True)
        except OSError:
            self.spare = None  # the launch forks then, as the others
            return
        # the manager may note it for its next launch before asking ("noted"):
        # that launch then runs without waiting for the word to go
        self._send({"spare": self.spare[0]})

    def _let_go(self, pid: int, ready: int, go: int) -> None:
        """End a spare without running anything: it exits when its pipe closes."""
        self.unreported.add(pid)
        os.close(ready)
        os.close(go)

    def _reap(self) -> None:
        """Collect exited children (no zombies) and report each one's exit status
        (not a spare's: no launch was made of it)."""
        while self.children or self.unreported or self.spare is not None:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                self.unreported.clear()
                return
            if pid == 0:
                return
            if pid in self.unreported:
                self.unreported.discard(pid)
                continue
            if self.spare is not None and pid == self.spare[0]:  # killed while it waited
                self._let_go(*self.spare)
                self.unreported.discard(pid)
                self.spare = None
                continue
            self.children.discard(pid)
            self._send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _send(self, said: dict) -> None:
        self.control.sendall(json.dumps(said).encode() + b"\n")

    def _stale(self) -> str | None:
        """A watched file that has changed since the start, or None. Comparing
        every stamp takes a millisecond on a busy machine, so on a launch's path
        it is done only when inotify saw something change in their directories,
        or when the last comparison is older than ``RECHECK_AFTER`` (a change
        inotify cannot see: another host's, on a network file system)."""
        if (
            self.changes is not None
            and not self.changes.seen()
            and time.monotonic() - self._checked_at < RECHECK_AFTER
        ):
            return None
        return self._compare_stamps()

    def _compare_stamps(self) -> str | None:
        checked_at = time.monotonic()
        for path, stamp in self.stamps.items():
            if _stamp(path) != stamp:
                return path
        self._checked_at = checked_at
        return None

    def _fork(self, held: list[int], warm: bool = False) -> tuple[int, int, int]:
        """Fork a child for a worker; return its pid, a pipe end that reads end of
        file once it leads its own session, and the pipe end that gives it its
        launch (``_spec``) and then the word to go on with: the child runs the
        worker only once the manager has noted its pid and said so, and exits
        without running it if the server dies or the manager goes away first, so
        no worker runs that a manager restarted after a crash would not know of.
        The child first closes ``held``, its elder siblings' pipe ends. ``warm``:
        a spare, which rehearses a worker's start while it waits for its launch."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            for fd in (ready_r, ready_w, go_r, go_w):
                os.close(fd)
            raise
        if pid == 0:
            module = "a worker"
            try:
                for fd in (*held, ready_r, go_w):
                    os.close(fd)
                self._leave_server()
                os.setsid()
                os.close(ready_w)  # the server reads end of file: the session exists
                if warm:
                    _warm_up(self.config_file)
                launch = _read_spec(go_r)
                if launch is None:  # a spare let go: nothing was launched
                    os._exit(0)
                module = launch[0]
                argv = self._prepare(*launch)
                word = os.read(go_r, 1)
                if word == b"x":  # the server refused the launch after all
                    os._exit(0)
                if word != b"g":
                    _say(f"the manager did not note {module} (pid {os.getpid()}); not run")
                    os._exit(1)
                os.close(go_r)
                sys.orig_argv = argv
                _run_as_main(module, launch[1])
            except BaseException:
                import traceback

                traceback.print_exc()
                _flush()
                os._exit(1)
        os.close(ready_w)
        os.close(go_r)
        return pid, ready_r, go_w

    def _leave_server(self) -> None:
        """In the child, at once: undo what is the server's (its signal handling,
        its pipe and its socket, which the manager must see closed when the
        server exits)."""
        signal.set_wakeup_fd(-1)
        for signum, handler in self.saved_handlers.items():
            signal.signal(signum, handler)
        os.close(self.wake_r)
        os.close(self.wake_w)
        if self.changes is not None:
            self.changes.close()
        self.control.close()

    def _prepare(
        self, module: str, args: list[str], cwd: str, env: dict | None, token: str | None
    ) -> list[str]:
        """In the child, before the word to go: become the worker's process as
        ``python -m module args`` would be (directory, title, environment, path);
        nothing of the worker runs yet. Returns its command line."""
        os.chdir(cwd)
        argv = [self.argv0, "-m", module, *args]
        # before the environment changes: setproctitle needs the process's own
        # environment block where the kernel put it to make room for the title
        _retitle(argv)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if token is not None:
            os.environ[LAUNCH_TOKEN_ENV] = token
        if not sys.flags.safe_path and sys.path and sys.path[0] == self.cwd:
            sys.path[0] = cwd  # as python -m puts the directory it runs in first
        return argv


def _spec(module: str, args: list[str], cwd: str, env: dict | None, token: str | None) -> bytes:
    """A launch as its child reads it from its pipe: a length, then JSON."""
    body = json.dumps([module, args, cwd, env, token]).encode()
    return len(body).to_bytes(8, "big") + body


def _read_spec(fd: int) -> list | None:
    """The launch ``_spec`` wrote, or None at end of file (let go)."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    body = _read_exactly(fd, int.from_bytes(head, "big"))
    return None if body is None else json.loads(body)


def _write_quietly(fd: int, data: bytes) -> None:
    """Write to a child's pipe; a child that has died is reaped, not an error."""
    try:
        _write_all(fd, data)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data``: a launch larger than a pipe holds (its environment) is
    written in parts as the child reads it, and a signal may cut a write short."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# How many times the server itself rehearses a worker's start after its imports.
# Python specializes a function's bytecode once it has run a few times, and fills
# its caches of attribute look-ups, both by writing to the memory that holds them;
# done here, a forked worker inherits them ready and reads them, where it would
# otherwise write to (and so copy) each page they are on. On a 2-core machine this
# took 3% off the page faults of a fan-out of 1,000 workers and 3 to 7% off its
# time and a hop's, in alternating runs (benchmarks/run.py); it costs the server's
# start a few tens of milliseconds, before it says it is ready.
SERVER_WARM_UPS = 20


def _warm_up(config_file: str | None, retitle: bool = True) -> None:
    """Do what a worker's start does (its module found and read, its command line
    built and parsed, the config loaded, logging configured, a few lines logged),
    with nothing kept and nothing written anywhere. In a spare, so that the pages
    of this process's memory it writes to (reference counts, caches) are copied
    from the server's now, not on the launch's path; in the server, so that what
    the interpreter learns from running it is there before any fork
    (``SERVER_WARM_UPS``: not ``retitle``, which is a worker's). Whatever fails is
    left out."""
    _quietly(_rehearse)
    if retitle:
        _quietly(_retitle_ahead)
    # finding and reading a worker's module, without running it: a module of the
    # standard library's that is not imported here
    _quietly(lambda: __import__("runpy")._get_module_details("json.tool"))
    config = _quietly(_load_config, config_file)
    _quietly(lambda: _rehearse_logging(config["logging"] if config is not None else None))


def _quietly(step: Any, *args: Any) -> Any:
    """``step(*args)``, or None if it fails (a rehearsal left out)."""
    try:
        return step(*args)
    except BaseException:
        return None


def _retitle_ahead() -> None:
    """setproctitle's first call makes room for titles (a fifth of a millisecond):
    done ahead, the worker's own title is then quick to set."""
    from setproctitle import getproctitle, setproctitle

    setproctitle(getproctitle())


def _load_config(config_file: str | None) -> Any:
    if config_file is None or "nowcast.config" not in sys.modules:
        return None
    config = sys.modules["nowcast.config"].Config()
    config.load(config_file)
    return config


def _rehearse_logging(section: Any) -> None:
    """Configure logging as ``section`` would, with handlers that write into
    memory, log three lines through them, then put logging back as it was."""
    import io
    import logging
    import logging.config

    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        dict(logging._handlers),
        logging._handlerList[:],
        set(logging.Logger.manager.loggerDict),
    )
    try:
        formatters = {}
        if isinstance(section, dict) and isinstance(section.get("formatters"), dict):
            formatters = {
                name: spec
                for name, spec in section["formatters"].items()
                # a formatter made by a class of the user's would import the user's code
                if isinstance(spec, dict) and "()" not in spec and "class" not in spec
            }
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": formatters,
                "handlers": {
                    name: {"class": "logging.NullHandler", "formatter": name} for name in formatters
                },
                "root": {"level": "INFO", "handlers": list(formatters)},
            }
        )
        for handler in root.handlers[:]:
            into = logging.StreamHandler(io.StringIO())
            into.setFormatter(handler.formatter)
            root.addHandler(into)
        for _ in range(3):
            root.info("rehearsing a worker's start in process %s", os.getpid())
    finally:
        handlers, level, named, listed, loggers = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        logging._handlers.clear()
        logging._handlers.update(named)
        logging._handlerList[:] = listed
        for name in set(logging.Logger.manager.loggerDict) - loggers:
            del logging.Logger.manager.loggerDict[name]


# What gettext's answer depends on besides the message (gettext.find reads these).
_LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _remember_translations() -> None:
    """argparse asks gettext for the translation of its words each time it makes a
    parser, and gettext looks through the locale directories each time (a third
    of a millisecond of a forked worker's start); have it remember each answer
    for the environment it depends on, answering the words of a parser's making
    from here."""
    argparse = sys.modules.get("argparse")
    if argparse is None or getattr(argparse._, "remembered", None) is not None:
        return
    import gettext

    lookup = argparse._
    remembered: dict[tuple, str] = {}

    def translation(message: str) -> str:
        key = (
            message,
            gettext._current_domain,
            gettext._localedirs.get(gettext._current_domain),
            *(os.environ.get(name) for name in _LANGUAGE_VARIABLES),
        )
        found = remembered.get(key)
        if found is None:
            found = remembered[key] = lookup(message)
        return found

    translation.remembered = remembered
    argparse._ = translation


def _rehearse() -> None:
    """Make a worker's command line, as ``NowcastWorker.init_cli`` does, and parse
    command lines of the common shapes (up to five positional arguments, an option
    with a value), so the regular expressions argparse compiles for them and the
    words it translates are at hand in every worker forked from here."""
    _remember_translations()
    try:
        from nowcast.cli import CommandLineInterface

        cli = CommandLineInterface("worker", package="", description="A ``worker``::\n\nx")
        cli.build_parser()
        cli.parser.add_argument("--debug", action="store_true", help="-")
        cli.parser.parse_args(["config.yaml", "--debug"])
        cli.parser.add_argument("--value", help="-")
        for count in range(1, 5):
            cli.parser.add_argument(f"arg{count}", help="-")
            given = [f"x{i}" for i in range(count)]
            cli.parser.parse_args(["config.yaml", *given, "--value", "v"])
            cli.parser.parse_args(["config.yaml", "--value", "v", *given])
    except Exception:
        pass


def _launch_request(request: dict) -> tuple[str, list[str], str, dict | None, str | None]:
    """``(module, args, cwd, env, token)`` of one launch: the worker's environment is
    ``env`` when given, else the server's own; the launch ``token`` is added to it."""
    token = request.get("token")
    if token is not None and not isinstance(token, str):
        raise TypeError(f"token must be a string, got {token!r}")
    return request["module"], list(request["args"]), request["cwd"], request.get("env"), token


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


# Seconds after which the fork server compares every stamp again before a launch
# even when inotify saw nothing change (it does not see another host's changes on a
# network file system); after a launch, it compares them when half this is past.
RECHECK_AFTER = 2.0

# inotify(7): what changes a file or a directory's entries
_IN_EVENTS = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000


class _Changes:
    """inotify watches on the directories of the fork server's watched paths:
    ``seen`` tells, with one read that finds nothing, that nothing in them has
    changed since the last look (a change to a file or to a directory's entries
    is queued as it is made)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, paths: set[str]) -> _Changes | None:
        """Watch the directories of ``paths`` (and those among them); None where
        inotify cannot be had (not Linux, no instances or watches left)."""
        try:
            import ctypes
            import errno

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        directories = {os.path.dirname(p) or "." for p in paths}
        directories |= {p for p in paths if os.path.isdir(p)}
        for directory in directories:
            if libc.inotify_add_watch(fd, os.fsencode(directory), _IN_EVENTS) < 0:
                if ctypes.get_errno() == errno.ENOENT:
                    continue  # nothing there to change; compared every RECHECK_AFTER
                os.close(fd)  # one not watched: no sign of its changes would come
                return None
        return cls(fd)

    def seen(self) -> bool:
        """Whether anything changed (or the queue overflowed) since the last look."""
        changed = False
        try:
            while os.read(self.fd, 65536):
                changed = True
        except BlockingIOError:
            pass
        except OSError:
            return True
        return changed

    def close(self) -> None:
        os.close(self.fd)


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
        return _Server(fd, argv[1] if len(argv) > 1 else None).serve()
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the manager is gone


if __name__ == "__main__":
    sys.exit(main())
