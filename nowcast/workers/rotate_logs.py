"""Rotate the log files of every rotating file handler in the config, those of
the ``logging: aggregator`` section (the log aggregator's) included.

Normally the last worker of a day's cycle. The long-running processes notice that
their file was rotated and reopen it, so they go on writing to the new file.

Usage: ``python -m nowcast.workers.rotate_logs config.yaml``
"""

from __future__ import annotations

import logging
import logging.config  # as NEMO_Nowcast's: tests patch rotate_logs.logging.config

from nowcast.worker import NowcastWorker, WorkerError

NAME = "rotate_logs"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast.workers")
    worker.init_cli()
    worker.run(rotate_logs, success, failure)


def success(parsed_args) -> str:
    logger.info("log files rotated")
    return "success"


def failure(parsed_args) -> str:
    logger.critical("failed to rotate log files")
    return "failure"


def rotate_logs(parsed_args, config, *args) -> dict:
    """Roll over each rotating handler the logging config made in this process."""

    rotated = []
    handlers = _rotating_handlers(logger.root)
    aggregators = _aggregator_handlers(config, {h.baseFilename for h in handlers})
    handlers += aggregators
    if not handlers:
        logger.warning("no rotating file handlers in the logging config; nothing to rotate")
    for handler in handlers:
        try:
            handler.doRollover()
        except OSError as e:
            raise WorkerError(f"cannot rotate {handler.baseFilename}: {e}") from e
        rotated.append(handler.baseFilename)
        logger.info("log file rotated: %s", handler.baseFilename)
    for handler in aggregators:
        handler.close()
    return {"log files": rotated}


def _rolled_here(handler: logging.Handler) -> bool:
    """A size-rotating file handler; timed ones roll on their own schedule (as in
    NEMO_Nowcast, whose rotate_logs leaves them alone)."""
    return (
        hasattr(handler, "doRollover")
        and not hasattr(handler, "when")
        and bool(getattr(handler, "baseFilename", None))
    )


def _aggregator_handlers(config, known: set) -> list:
    """The rotating file handlers of the ``logging: aggregator`` section (the log
    aggregator's files, as NEMO_Nowcast's rotate_logs rolls them), made here
    without touching this process's logging; the aggregator reopens the files."""
    import logging.config

    section = (config.get("logging") or {}).get("aggregator")
    if not isinstance(section, dict) or not isinstance(section.get("handlers"), dict):
        return []
    configurator = logging.config.DictConfigurator(section)
    handlers = []
    for name, spec in section["handlers"].items():
        if not isinstance(spec, dict) or "filename" not in spec:
            continue
        spec = {k: v for k, v in spec.items() if k not in ("formatter", "filters")}
        spec.setdefault("delay", True)  # open nothing that is not rolled
        try:
            handler = configurator.configure_handler(spec)
        except (ValueError, TypeError, AttributeError, ImportError) as e:
            raise WorkerError(f"logging: aggregator: handlers: {name}: cannot be made: {e}")
        if _rolled_here(handler) and handler.baseFilename not in known:
            handlers.append(handler)
            known.add(handler.baseFilename)
        else:
            handler.close()
    return handlers


def _rotating_handlers(root: logging.Logger) -> list:
    found = {}
    loggers = [root] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if _rolled_here(handler):
                found.setdefault(handler.baseFilename, handler)
    return list(found.values())


if __name__ == "__main__":
    main()
