"""Estuary nowcast worker that makes the model's forcing from the weather."""

import logging
from pathlib import Path

import arrow

from nemo_nowcast import NowcastWorker, WorkerError
from nowcast import lib

NAME = "make_forcing"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__)
    worker.init_cli()
    worker.cli.add_date_option(
        "--run-date", default=arrow.now().floor("day"), help="Date to make forcing for."
    )
    worker.run(make_forcing, success, failure)
    return worker


def success(parsed_args):
    logger.info(f"forcing for {parsed_args.run_date.format('YYYY-MM-DD')} made")
    return "success"


def failure(parsed_args):
    logger.critical(f"forcing for {parsed_args.run_date.format('YYYY-MM-DD')} failed")
    return "failure"


def make_forcing(parsed_args, config, tell_manager):
    weather = tell_manager("need", "weather").payload
    source = Path(weather["file"])
    if not source.exists():
        raise WorkerError(f"no weather file: {source}")
    try:
        mean = lib.mean_temperature(source.read_text().splitlines())
    except ValueError as e:
        raise WorkerError(f"unreadable weather file {source}: {e}")
    forcing = source.parent / lib.forcing_file_name(parsed_args.run_date)
    forcing.write_text(f"{mean:.2f}\n")
    return {"file": str(forcing), "mean temperature": round(mean, 2)}


if __name__ == "__main__":
    main()  # pragma: no cover
