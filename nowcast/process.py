"""The template every long-running process fills in: broker, manager and the
processes later issues add.

``setup()`` reads the config and opens sockets, ``loop()`` does one unit of work
and returns, ``reload()`` re-reads the config, ``shutdown()`` closes. ``run()``
owns the flags: signal handlers only set them, and the loop acts on them between
units of work. TERM and INT stop gracefully (supervisord sends TERM); HUP reloads.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

from nowcast.config import Config
from nowcast.errors import ConfigError, NowcastError
from nowcast.logs import EscapeArgs

_escape_args = EscapeArgs()


class LongRunningProcess:
    """One nowcast process that runs until it is told to stop."""

    #: The process's name in logs and messages.
    name = "process"
    #: Command-line options beyond the config file: ``(flags, add_argument options)``.
    cli_arguments: tuple = ()

    def __init__(self, args: Any = None, name: str | None = None) -> None:
        """``args``: the parsed command line; None (as NEMO_Nowcast's
        ``NowcastManager()``) parses ``sys.argv`` when the process runs. A string
        first is the name, as in NEMO_Nowcast's ``NowcastManager("name")``."""
        if isinstance(args, str):
            name, args = args, None
        if name is not None:
            self.name = name
        self.args = args
        self.config = Config()
        self.logger = logging.getLogger(self.name)
        self.logger.addFilter(_escape_args)  # message text never starts a log line of its own
        self._stop_signal: int | None = None
        self._reload_wanted = False

    # the parts a process fills in

    def setup(self) -> None:
        """Open sockets and read state; the config is loaded and logging is set."""

    def loop(self) -> None:
        """Do one unit of work, waiting at most a short while for it."""
        raise NotImplementedError

    def validate(self, config: Config) -> None:
        """Raise ``ConfigError`` unless ``config`` holds what this process needs."""

    #: Whether this process sends its records to the log aggregator, when one is configured.
    sends_logs = True

    def logging_config(self, config: Config) -> Config:
        """The config whose ``logging`` section this process logs by."""
        return config

    def apply_config(self, old: Config, new: Config) -> None:
        """Start using ``new`` after a reload (already validated)."""

    def shutdown(self) -> None:
        """Close what ``setup`` opened."""

    # the runner

    def load_config(self) -> Config:
        """Read and validate the config file named on the command line."""
        config = Config()
        try:
            config.load(self.args.config_file)
        except OSError as e:
            raise ConfigError(
                f"cannot read config file {self.args.config_file}: {e.strerror}"
            ) from None
        except KeyError as e:
            raise ConfigError(e.args[0]) from None
        self.validate(config)
        return config

    def reload(self) -> None:
        """Re-read the config; keep the old one if the new one is not valid."""
        from nowcast import logs

        self.logger.info(
            "hangup signal (SIGHUP) received; reloading config from %s", self.args.config_file
        )
        try:
            new = self.load_config()
        except ConfigError as e:
            self.logger.error("config reload refused, still using the previous config: %s", e)
            return
        old, self.config = self.config, new
        try:
            logs.configure(self.logging_config(new), aggregate=self.sends_logs)
        except ConfigError as e:
            self.logger.error("logging config refused, keeping the previous one: %s", e)
            logs.configure(self.logging_config(old), aggregate=self.sends_logs)
        self.apply_config(old, new)
        self.logger.info("config reloaded")

    def run(self) -> int:
        """Set up, loop until a stop signal, shut down. Returns the exit code."""
        from nowcast import logs

        if self.args is None:
            self.args = self.parse_args()

        try:
            self.config = self.load_config()
            logs.configure(self.logging_config(self.config), aggregate=self.sends_logs)
        except ConfigError as e:
            logs.console_only()
            self.logger.critical("cannot start: %s", e)
            return 2
        self.logger.info("running in process %s", os.getpid())
        self.logger.info("read config from %s", self.config.file)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._want_stop)
        signal.signal(signal.SIGHUP, self._want_reload)
        try:
            self.setup()
            while self._stop_signal is None:
                if self._reload_wanted:
                    self._reload_wanted = False
                    try:
                        self.reload()
                    except Exception:
                        self.logger.exception("config reload failed; carrying on")
                try:
                    self.loop()
                except ConfigError:
                    raise
                except Exception:
                    self.logger.exception(
                        "unexpected error in %s; carrying on with the next message", self.name
                    )
                    time.sleep(0.1)  # no tight loop if the error repeats
        except NowcastError as e:  # a config mistake, another copy running...
            self.logger.critical("cannot run: %s", e)
            return 2
        finally:
            if self._stop_signal is not None:
                self.logger.info(
                    "%s received; shutting down", signal.Signals(self._stop_signal).name
                )
            self.shutdown()
        return 0

    def _want_stop(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    def _want_reload(self, signum: int, frame: Any) -> None:
        self._reload_wanted = True

    @classmethod
    def parse_args(cls, argv: list[str] | None = None, arguments: Any = ()) -> Any:
        """Parse the process's command line (``sys.argv`` unless ``argv``)."""
        from nowcast.cli import CommandLineInterface

        cli = CommandLineInterface(cls.name, package="nowcast", description=cls.__doc__)
        cli.build_parser()
        for flags, options in (*cls.cli_arguments, *arguments):
            cli.add_argument(*flags, **options)
        return cli.parser.parse_args(argv)


def run_process(
    process_class: type[LongRunningProcess], argv: list[str] | None = None, **cli_options: Any
) -> None:
    """Entry point: parse the command line and run ``process_class`` until stopped;
    exit with its exit code."""
    args = process_class.parse_args(argv, cli_options.get("arguments", ()))
    sys.exit(process_class(args).run())


main = run_process  # the name the processes' modules used first
