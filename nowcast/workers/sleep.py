"""Sleep for a while, then report success: a worker to try the system with.

Usage: ``python -m nowcast.workers.sleep config.yaml [--sleep-time SECONDS]``
"""

from __future__ import annotations

import logging
import time

from nowcast.worker import NowcastWorker

NAME = "sleep"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast.workers")
    worker.init_cli()
    # NEMO_Nowcast's command line: a whole number of seconds
    worker.cli.parser.set_defaults(sleep_time=5)
    worker.cli.parser.add_argument(
        "--sleep-time", type=int, help="Whole seconds to sleep; defaults to 5."
    )
    worker.run(sleep, success, failure)


def success(parsed_args) -> str:
    logger.info(
        "slept for %s seconds",
        parsed_args.sleep_time,
        extra={"sleep_time": parsed_args.sleep_time},
    )
    return "success"


def failure(parsed_args) -> str:
    logger.critical(
        "failed to sleep for %s seconds",
        parsed_args.sleep_time,
        extra={"sleep_time": parsed_args.sleep_time},
    )
    return "failure"


def sleep(parsed_args, config, *args) -> dict:
    time.sleep(parsed_args.sleep_time)
    return {"sleep time": parsed_args.sleep_time}


if __name__ == "__main__":
    main()
