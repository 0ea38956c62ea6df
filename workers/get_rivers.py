"""Fabricate a day of hourly river inflow (discharge, water temperature).

Usage: ``python -m workers.get_rivers config.yaml --run-date YYYY-MM-DD [--simulate-outage]``
"""

from __future__ import annotations

import logging
import math
import random

import arrow

from nowcast import NowcastWorker, WorkerError
from workers.common import day_dir, write_series

NAME = "get_rivers"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="workers")
    worker.init_cli()
    worker.cli.add_date_option("--run-date", arrow.utcnow().floor("day"), "Date of the forcing.")
    worker.cli.add_argument(
        "--simulate-outage", action="store_true", help="Fail as if the gauges were down."
    )
    worker.run(get_rivers, success, failure)


def success(parsed_args) -> str:
    logger.info("river forcing for %s ready", parsed_args.run_date.format("YYYY-MM-DD"))
    return "success"


def failure(parsed_args) -> str:
    logger.critical("no river forcing for %s", parsed_args.run_date.format("YYYY-MM-DD"))
    return "failure"


def get_rivers(parsed_args, config, *args) -> dict:
    if parsed_args.simulate_outage:
        raise WorkerError("river gauge service unavailable (simulated outage)")
    rng = random.Random(parsed_args.run_date.format("YYYYMMDD") + "rivers")
    day_of_year = parsed_args.run_date.timetuple().tm_yday
    freshet = 1 + 2.5 * math.exp(-(((day_of_year - 160) / 30) ** 2))
    rows = []
    for hour in range(25):
        discharge = 800 * freshet * (1 + 0.05 * math.sin(2 * math.pi * hour / 24)) + rng.gauss(
            0, 10
        )
        temperature = 4 + 8 * (1 - math.cos(2 * math.pi * (day_of_year - 30) / 365)) / 2
        rows.append([hour, round(discharge, 1), round(temperature, 2)])
    path = day_dir(config, parsed_args.run_date) / "rivers.csv"
    write_series(path, ["hour", "discharge", "water temperature"], rows)
    logger.debug("wrote %s", path)
    return {"file": str(path), "hours": len(rows)}


if __name__ == "__main__":
    main()
