"""Workers: the small programs that do one job and tell the manager how it went.

A worker module builds a ``NowcastWorker``, adds its command-line options, and calls
``run(worker_func, success, failure)``. ``worker_func`` returns the payload for the
checklist; raising ``WorkerError`` reports failure, any other exception a crash.

Exit codes (documented for operators and supervisors):

====  ===========================================================================
0     the job succeeded and the manager acknowledged it
1     the job failed (``WorkerError``); the failure was reported
2     command-line or configuration error, or the worker (checked at start,
      before any work) or a message type it sends is not in the message
      registry; nothing was sent
3     the job crashed (unhandled exception); the crash was reported
4     no reply from the manager within the give-up time
5     the manager answered with an error (unregistered worker or message type,
      an ``after_*`` function that raised, an invalid message, a ``need``
      answered ``reply too big``)
6     the message was over ``zmq: max message size``; nothing was sent
143   stopped by SIGTERM (or 130 by SIGINT); nothing further was reported
====  ===========================================================================

This module is on every worker's start-up path: it imports only what a worker
needs, and that only when it needs it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from nowcast import defaults
from nowcast.config import Config, require_zmq
from nowcast.errors import (
    ConfigError,
    NoManagerError,
    NowcastError,
    PayloadError,
    RegistrationError,
    WorkerError,
)
from nowcast.message import Message, to_plain
from nowcast.next_worker import NextWorker

EXIT_SUCCESS = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CRASH = 3
EXIT_NO_MANAGER = 4
EXIT_REFUSED = 5
EXIT_TOO_BIG = 6

# Replies that mean the manager did not accept a message, with what they mean.
ERROR_REPLIES = {
    "unregistered worker": "message received from a worker not in the message registry",
    "unregistered message type": "message type not registered for the worker",
    "no after_worker function": "no after_<worker> function in the next workers module",
    "after_worker function failed": "the after_<worker> function raised an exception",
    "invalid message": "the manager could not read the message",
    "unknown checklist key": "the checklist has no such key",
    "reply too big": "the reply would be over zmq: max message size",
}
# Replies that mean the message was applied.
OK_REPLIES = {
    "ack": "message acknowledged",
    "checklist cleared": "system checklist cleared",
}

__all__ = ["NextWorker", "NowcastWorker", "WorkerError"]


class ManagerRefusedError(NowcastError):
    """The manager answered a message with one of ``ERROR_REPLIES``."""


class MessageTooBigError(NowcastError):
    """A message is over ``zmq: max message size``: the broker would drop it."""


class NowcastWorker:
    """The frame of a worker: command line, config, logging, and the exchange of
    messages with the manager (with re-sends and a bounded wait)."""

    def __init__(
        self,
        name: str,
        description: str,
        package: str = "nowcast.workers",
        config: Config | None = None,
        logger: logging.Logger | None = None,
        cli: Any = None,
        worker_func: Callable | None = None,
        success: Callable | None = None,
        failure: Callable | None = None,
    ):
        # the arguments NEMO_Nowcast's NowcastWorker takes, in its order
        self.name = name
        self.description = description
        self.package = package
        self.config = Config() if config is None else config
        self.logger: logging.Logger | None = logger
        self.cli = cli
        self.worker_func: Callable | None = worker_func
        self.success: Callable | None = success
        self.failure: Callable | None = failure
        self._parsed_args = None
        self._context = None
        self._sent = 0
        self._opened: Any = None  # a connection to the broker opened ahead (zmtp.Opened)

    def init_cli(self) -> None:
        """Build the default command line: the config file, ``--debug``, ``--help``.

        Add more with ``self.cli.add_argument`` and ``self.cli.add_date_option``.
        """
        from nowcast.cli import CommandLineInterface

        self.cli = CommandLineInterface(
            self.name, package=self.package, description=self.description
        )
        self.cli.build_parser()
        self.cli.parser.add_argument(
            "--debug",
            action="store_true",
            help="Log to the console instead of the log files, and send nothing to "
            "the manager (messages that would be sent are logged).",
        )

    def run(self, worker_func: Callable, success: Callable, failure: Callable) -> int:
        """Parse the command line, read the config, set up logging, do the job,
        tell the manager.

        Run as a program (called from a module whose ``__name__`` is
        ``"__main__"``: ``python -m``, the manager's launches), the process exits
        with the exit code (see the module doc) when the job did not succeed.
        Called otherwise (from a test, from other code), it returns the exit code,
        as NEMO_Nowcast's ``run`` returns.
        """
        as_program = sys._getframe(1).f_globals.get("__name__") == "__main__"
        self.worker_func = worker_func
        self.success, self.failure = success, failure
        if self.cli is None:
            self.init_cli()
        self._parsed_args = self.cli.parser.parse_args()
        if self.logger is None:
            self.logger = logging.getLogger(self.name)
        _launch_token()  # out of the environment before the job starts anything
        code = self._prepare()
        if code == EXIT_SUCCESS:
            signal.signal(signal.SIGTERM, _exit_on_signal)
            signal.signal(signal.SIGINT, _exit_on_signal)
            try:
                code = self._do_work()
            except SystemExit as stop:
                if stop.code in (128 + signal.SIGTERM, 128 + signal.SIGINT):
                    self.logger.warning(
                        "stopped by signal %s; nothing more is reported to the manager",
                        signal.Signals(stop.code - 128).name,
                    )
                    raise
                # the worker function ended the worker itself (sys.exit): as in
                # NEMO_Nowcast, a normal end with nothing reported to the manager
                code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
                self.logger.info(
                    "worker function raised SystemExit(%r); nothing reported to the manager",
                    stop.code,
                )
            finally:
                if self._context is not None:
                    self._context.destroy(linger=0)
                    self._context = None
        self.logger.debug("shutting down")
        if as_program and code != EXIT_SUCCESS:
            sys.exit(code)
        return code

    def _prepare(self) -> int:
        from nowcast import logs

        try:
            self.config.load(self._parsed_args.config_file)
            where = logs.configure(self.config, debug=self._parsed_args.debug)
            self._check_registration()
            if not self._parsed_args.debug:
                require_zmq(self.config)
                if "curve keys" in self.config["zmq"]:
                    from nowcast import sockets

                    sockets.check_keys(self.config, "client")
        except (OSError, KeyError, ConfigError) as e:
            logs.console_only()
            text = e.args[0] if isinstance(e, KeyError) and e.args else e
            self.logger.critical("cannot start: %s", text)
            return EXIT_USAGE
        if not self._parsed_args.debug:
            self._open_ahead()
        self.logger.info("running in process %s", os.getpid())
        self.logger.info("read config from %s", self.config.file)
        self.logger.info("%s", where)
        return EXIT_SUCCESS

    def _check_registration(self) -> None:
        """Raise ``RegistrationError`` unless this worker is in the message registry
        (before any work is done)."""
        registry = self.config.get("message registry")
        workers = registry.get("workers") if isinstance(registry, dict) else None
        entry = workers.get(self.name) if isinstance(workers, dict) else None
        if not isinstance(entry, dict):
            raise RegistrationError(
                f"{self.config.file}: worker {self.name!r} is not registered: no key "
                f"'message registry: workers: {self.name}'"
            )

    def _do_work(self) -> int:
        args = self._parsed_args
        try:
            try:
                try:
                    payload = self.worker_func(args, self.config, self.tell_manager)
                    payload = to_plain(payload)
                    msg_type, code = self.success(args), EXIT_SUCCESS
                except RegistrationError:
                    raise
                except WorkerError as e:
                    if str(e):
                        self.logger.error("%s", e)
                    msg_type, payload, code = self.failure(args), None, EXIT_FAILURE
            except (NoManagerError, ManagerRefusedError, RegistrationError, MessageTooBigError):
                raise
            except PayloadError as e:
                self.logger.critical("cannot report the result: %s", e)
                msg_type, payload, code = "crash", None, EXIT_CRASH
            except Exception:
                self.logger.critical("unhandled exception:", exc_info=True)
                msg_type, payload, code = "crash", None, EXIT_CRASH
            self.tell_manager(msg_type, payload)
            return code
        except NoManagerError:
            return EXIT_NO_MANAGER
        except ManagerRefusedError:
            return EXIT_REFUSED
        except MessageTooBigError:
            return EXIT_TOO_BIG
        except RegistrationError as e:
            self.logger.critical("%s", e)
            return EXIT_USAGE

    def tell_manager(self, msg_type: str, payload: Any = None) -> Message | None:
        """Send ``(self.name, msg_type, payload)`` to the manager; return its reply.

        Waits ``zmq: reply timeout`` seconds for the reply, re-sends the same message
        (same id) on a fresh socket, and gives up after ``zmq: give up after`` seconds.

        :raises RegistrationError: ``msg_type`` is not registered for this worker
            (a ``WorkerError`` and a ``ConfigError``); the worker exits with code 2.
        :raises NoManagerError: no reply in time.
        :raises ManagerRefusedError: the manager answered with an error.
        :raises MessageTooBigError: the message is over ``zmq: max message size``
            (nothing is sent).
        """
        registry = self.config.get("message registry") or {}
        try:
            descriptions = registry["workers"][self.name]
            description = descriptions[msg_type]
        except (KeyError, TypeError):
            raise RegistrationError(
                f"{self.config.file}: message type {msg_type!r} is not registered: no key "
                f"'message registry: workers: {self.name}: {msg_type}'"
            ) from None
        if self._parsed_args is not None and self._parsed_args.debug:
            self.logger.debug(
                "**debug mode** message that would have been sent to manager: (%s) %s",
                msg_type,
                description,
            )
            return None
        self._sent += 1
        msg_id = f"{self.name}:{os.getpid()}:{_launch_token()}:{self._sent}"
        message = Message(self.name, msg_type, to_plain(payload), msg_id)
        text = message.serialize()
        self._check_size(text, msg_type)
        reply_text = self._exchange(text, msg_type)
        self.logger.debug("sent message: (%s) %s", msg_type, description)
        try:
            reply = Message.deserialize(reply_text)
        except NowcastError as e:
            self.logger.error("unreadable reply from manager: %s", e)
            raise ManagerRefusedError(str(e)) from None
        manager_words = registry.get("manager") or {}
        if reply.type in OK_REPLIES:
            words = manager_words.get(reply.type, OK_REPLIES[reply.type])
            self.logger.debug("received message from %s: (%s) %s", reply.source, reply.type, words)
            return reply
        words = ERROR_REPLIES.get(reply.type) or manager_words.get(reply.type, "unknown reply")
        detail = f": {reply.payload}" if reply.payload else ""
        self.logger.error(
            "manager refused (%s) message: (%s) %s%s", msg_type, reply.type, words, detail
        )
        raise ManagerRefusedError(reply.type)

    def _check_size(self, text: str, msg_type: str) -> None:
        """Refuse, at once, a message the broker would drop for its size."""
        limit = int(self.config["zmq"].get("max message size", defaults.MAX_MESSAGE_SIZE))
        if len(text) * 4 <= limit:  # no character takes more than 4 bytes
            return
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            self.logger.critical(
                "(%s) message of %d bytes is over the limit of %d bytes (zmq: max message "
                "size in %s); not sent. Make the payload smaller, or raise the limit",
                msg_type,
                size,
                limit,
                self.config.file,
            )
            raise MessageTooBigError(f"{size} bytes, over the limit of {limit}")

    def _open_ahead(self) -> None:
        """Open the connection to the broker the first message will use, while
        the job runs, when it is spoken in ZMTP (``nowcast.zmtp``)."""
        from nowcast import sockets, zmtp

        try:
            host, port = str(self.config["zmq"]["host"]), sockets.port(self.config, "workers")
            if zmtp.usable(host, sockets.keys_dir(self.config) is not None):
                self._opened = zmtp.Opened.open(host, port)
        except (KeyError, TypeError, ValueError, ConfigError):
            self._opened = None  # the first message reports what is wrong

    def _exchange(self, text: str, msg_type: str) -> str:
        """Send ``text``, wait for the reply; re-send on a fresh socket on time-out."""
        from nowcast import sockets, zmtp

        zmq_config = self.config["zmq"]
        reply_timeout = float(zmq_config.get("reply timeout", defaults.REPLY_TIMEOUT))
        give_up_after = float(zmq_config.get("give up after", defaults.GIVE_UP_AFTER))
        address = sockets.address(self.config, "workers")
        host, port = str(zmq_config["host"]), sockets.port(self.config, "workers")
        plain = zmtp.usable(host, sockets.keys_dir(self.config) is not None)
        start = time.monotonic()
        tries = 0
        while True:
            tries += 1
            wait = min(reply_timeout, max(0.0, give_up_after - (time.monotonic() - start)))
            # whole milliseconds, rounded up: a wait of under 1 ms is not 0 ms,
            # which would re-send at once, over and over, before giving up
            wait = math.ceil(wait * 1000) / 1000
            if plain:
                opened, self._opened = self._opened, None
                reply = zmtp.request(host, port, text.encode("utf-8"), wait, opened)
                if reply is not None:
                    return reply.decode("utf-8")
            else:
                reply_text = self._exchange_zmq(text, wait)
                if reply_text is not None:
                    return reply_text
            waited = time.monotonic() - start
            if waited >= give_up_after:
                self.logger.critical(
                    "no reply from the manager through the broker at %s after %d tries "
                    "in %.0f s; giving up on (%s) message. Is the message broker "
                    "running? Is the manager?",
                    address,
                    tries,
                    waited,
                    msg_type,
                )
                raise NoManagerError(address)
            self.logger.warning(
                "no reply from the manager within %.1f s; re-sending (%s) message (try %d)",
                reply_timeout,
                msg_type,
                tries + 1,
            )

    def _exchange_zmq(self, text: str, wait: float) -> str | None:
        """Send ``text`` on a fresh zmq REQ socket; the reply, or None after ``wait``
        seconds without one."""
        import zmq

        from nowcast import sockets

        if self._context is None:
            self._context = zmq.Context()
        socket = sockets.client(self._context, zmq.REQ, self.config, "workers")
        try:
            socket.send_string(text)
            if socket.poll(round(wait * 1000)):
                return socket.recv_string()
            return None
        finally:
            socket.close(linger=0)


def _launch_token() -> str:
    """The token the manager launched this worker with, which names this launch in
    its message ids; a worker run by hand gets a random one of its own. Taken out
    of the environment, so that a worker this one starts does not claim it."""
    global _token
    if _token is None:
        token = os.environ.pop(defaults.LAUNCH_TOKEN_ENV, "")
        if not (token.isascii() and token.isalnum() and len(token) <= 64):
            token = ""
        _token = token or os.urandom(8).hex()
    return _token


_token: str | None = None


def _exit_on_signal(signum: int, frame: Any) -> None:
    """Stop the worker now: its job is abandoned and nothing more is reported."""
    raise SystemExit(128 + signum)


def __getattr__(name: str) -> Any:
    # NEMO_Nowcast has get_web_data here; its module is imported only when it is used
    if name == "get_web_data":
        from nowcast.web_data import get_web_data

        return get_web_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
