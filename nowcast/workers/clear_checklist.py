"""Ask the manager to clear the checklist: normally the end of a day's cycle,
just before ``rotate_logs``. Operators may also run it by hand.

The manager first writes the checklist to its ``checklist`` logger, when one is
configured, so each day's final checklist is kept.

Usage: ``python -m nowcast.workers.clear_checklist config.yaml``
"""

from __future__ import annotations

import logging

from nowcast.worker import NowcastWorker

NAME = "clear_checklist"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast.workers")
    worker.init_cli()
    worker.run(clear_checklist, success, failure)


def success(parsed_args) -> str:
    logger.info("nowcast system checklist cleared")
    return "success"


def failure(parsed_args) -> str:
    logger.critical("failed to clear nowcast system checklist")
    return "failure"


def clear_checklist(parsed_args, config, tell_manager) -> None:
    logger.info("requesting that manager clear system state checklist")
    tell_manager("clear checklist")
    # nothing to add to the checklist we just cleared


if __name__ == "__main__":
    main()
