"""Run the example model: water temperature along a 50 km estuary channel.

A 1-D advection-diffusion model, heated or cooled by the air at the surface, fed
at its head by the river and held at the sea's temperature at its mouth. It reads the day's weather and river forcing and
writes hourly temperatures at three stations. It takes a few seconds, as a real
model takes hours.

Usage: ``python -m workers.run_model config.yaml --run-date YYYY-MM-DD``
"""

from __future__ import annotations

import logging
import time

import arrow

from nowcast import NowcastWorker, WorkerError
from workers.common import day_dir, read_series, write_series

NAME = "run_model"
logger = logging.getLogger(NAME)

LENGTH_M = 50_000.0  # channel length
CELLS = 1500
CROSS_SECTION_M2 = 5_000.0  # river discharge / this = current speed
DIFFUSIVITY = 30.0  # m2/s, along-channel mixing
EXCHANGE_PER_S = 1 / (3 * 86_400)  # relaxation of the water towards the air
SEA_TEMPERATURE = 9.0  # at the mouth, held fixed
STATIONS_KM = (5, 25, 45)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="workers")
    worker.init_cli()
    worker.cli.add_date_option(
        "--run-date", arrow.utcnow().floor("day"), "Date to run the model for."
    )
    worker.run(run_model, success, failure)


def success(parsed_args) -> str:
    logger.info("model run for %s completed", parsed_args.run_date.format("YYYY-MM-DD"))
    return "success"


def failure(parsed_args) -> str:
    logger.critical("model run for %s failed", parsed_args.run_date.format("YYYY-MM-DD"))
    return "failure"


def run_model(parsed_args, config, *args) -> dict:
    directory = day_dir(config, parsed_args.run_date)
    forcing = {}
    for name in ("weather", "rivers"):
        path = directory / f"{name}.csv"
        if not path.exists():
            raise WorkerError(f"missing {name} forcing file {path}")
        forcing[name] = read_series(path)[1]
    started = time.monotonic()
    hourly = simulate(forcing["weather"], forcing["rivers"])
    elapsed = time.monotonic() - started
    path = directory / "results.csv"
    write_series(path, ["hour", *(f"temperature at {km} km" for km in STATIONS_KM)], hourly)
    logger.info("simulated 24 h in %.1f s; results in %s", elapsed, path)
    final = hourly[-1][1:]
    return {
        "results": str(path),
        "seconds": round(elapsed, 1),
        "final temperatures": dict(zip((f"{km} km" for km in STATIONS_KM), final, strict=True)),
    }


def simulate(weather: list[list[float]], rivers: list[list[float]]) -> list[list[float]]:
    """Step the channel through 24 h with an explicit upwind scheme."""
    dx = LENGTH_M / CELLS
    head = rivers[0][2]
    temperature = [head + (SEA_TEMPERATURE - head) * i / (CELLS - 1) for i in range(CELLS)]
    stations = [min(CELLS - 1, int(km * 1000 / dx)) for km in STATIONS_KM]
    hourly = [[0, *(round(temperature[i], 3) for i in stations)]]
    for hour in range(24):
        air = (weather[hour][1] + weather[hour + 1][1]) / 2
        discharge, river_temperature = rivers[hour][1], rivers[hour][2]
        speed = discharge / CROSS_SECTION_M2
        dt = 0.4 * min(dx / speed, dx * dx / (2 * DIFFUSIVITY))
        steps = int(3600 / dt) + 1
        dt = 3600 / steps
        advect, diffuse, relax = speed * dt / dx, DIFFUSIVITY * dt / (dx * dx), EXCHANGE_PER_S * dt
        for _ in range(steps):
            upstream = [river_temperature, *temperature[:-1]]
            downstream = [*temperature[1:], SEA_TEMPERATURE]
            temperature = [
                t - advect * (t - up) + diffuse * (up - 2 * t + down) + relax * (air - t)
                for t, up, down in zip(temperature, upstream, downstream, strict=True)
            ]
        hourly.append([hour + 1, *(round(temperature[i], 3) for i in stations)])
    return hourly


if __name__ == "__main__":
    main()
