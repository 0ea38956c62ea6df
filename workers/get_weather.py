"""Fabricate a day of hourly weather forcing (air temperature, wind speed).

A real system downloads this from a forecast centre; here it is made up from
the date, so the example needs no network.

Usage: ``python -m workers.get_weather config.yaml --run-date YYYY-MM-DD [--simulate-outage]``
"""

from __future__ import annotations

import logging
import math
import random

import arrow

from nowcast import NowcastWorker, WorkerError
from workers.common import day_dir, write_series

NAME = "get_weather"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="workers")
    worker.init_cli()
    worker.cli.add_date_option("--run-date", arrow.utcnow().floor("day"), "Date of the forcing.")
    worker.cli.add_argument(
        "--simulate-outage", action="store_true", help="Fail as if the source were down."
    )
    worker.run(get_weather, success, failure)


def success(parsed_args) -> str:
    logger.info("weather forcing for %s ready", parsed_args.run_date.format("YYYY-MM-DD"))
    return "success"


def failure(parsed_args) -> str:
    logger.critical("no weather forcing for %s", parsed_args.run_date.format("YYYY-MM-DD"))
    return "failure"


def get_weather(parsed_args, config, *args) -> dict:
    if parsed_args.simulate_outage:
        raise WorkerError("weather service unavailable (simulated outage)")
    rng = random.Random(parsed_args.run_date.format("YYYYMMDD") + "weather")
    day_of_year = parsed_args.run_date.timetuple().tm_yday
    seasonal = 10 - 8 * math.cos(2 * math.pi * (day_of_year - 15) / 365)
    rows = []
    for hour in range(25):
        air = seasonal + 4 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, 0.3)
        wind = max(0.0, 6 + 3 * math.sin(2 * math.pi * hour / 24) + rng.gauss(0, 1))
        rows.append([hour, round(air, 2), round(wind, 2)])
    path = day_dir(config, parsed_args.run_date) / "weather.csv"
    write_series(path, ["hour", "air temperature", "wind speed"], rows)
    logger.debug("wrote %s", path)
    return {"file": str(path), "hours": len(rows)}


if __name__ == "__main__":
    main()
