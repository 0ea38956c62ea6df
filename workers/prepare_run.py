"""Start a day's cycle: make the run directory and record the run date.

Its after_ function launches the two forcing workers as a race-condition group.

Usage: ``python -m workers.prepare_run config.yaml [--run-date YYYY-MM-DD]
[--simulate-outage rivers|weather]``
"""

from __future__ import annotations

import logging

import arrow

from nowcast import NowcastWorker
from workers.common import day_dir

NAME = "prepare_run"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="workers")
    worker.init_cli()
    worker.cli.add_date_option(
        "--run-date", arrow.utcnow().floor("day"), "Date to run the cycle for."
    )
    worker.cli.add_argument(
        "--simulate-outage",
        choices=["rivers", "weather"],
        help="Make that forcing source fail, to see the failure path.",
    )
    worker.run(prepare_run, success, failure)


def success(parsed_args) -> str:
    logger.info("cycle prepared for %s", parsed_args.run_date.format("YYYY-MM-DD"))
    return "success"


def failure(parsed_args) -> str:
    logger.critical("cannot prepare the cycle for %s", parsed_args.run_date.format("YYYY-MM-DD"))
    return "failure"


def prepare_run(parsed_args, config, *args) -> dict:
    directory = day_dir(config, parsed_args.run_date)
    stale = sorted(directory.iterdir())
    for path in stale:  # a re-run of a day starts from nothing
        path.unlink()
    if stale:
        logger.info("removed %d file(s) of an earlier run for this date", len(stale))
    logger.info("run directory: %s", directory)
    return {
        "run date": parsed_args.run_date.format("YYYY-MM-DD"),
        "run dir": str(directory),
        "simulate outage": parsed_args.simulate_outage,
    }


if __name__ == "__main__":
    main()
