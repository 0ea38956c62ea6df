"""Estuary nowcast worker that downloads the day's weather forecast."""

import logging
from pathlib import Path

import arrow
from nemo_nowcast.fileutils import FilePerms
from nemo_nowcast.worker import get_web_data

from nemo_nowcast import NowcastWorker, WorkerError

NAME = "download_weather"
logger = logging.getLogger(NAME)


def main():
    worker = NowcastWorker(NAME, description=__doc__)
    worker.init_cli()
    worker.cli.add_date_option(
        "--run-date",
        default=arrow.now().floor("day"),
        help="Date of the forecast to download.",
    )
    worker.run(download_weather, success, failure)
    return worker


def success(parsed_args):
    logger.info(f"weather forecast for {parsed_args.run_date.format('YYYY-MM-DD')} downloaded")
    return "success"


def failure(parsed_args):
    logger.critical(
        f"weather forecast for {parsed_args.run_date.format('YYYY-MM-DD')} download failed"
    )
    return "failure"


def download_weather(parsed_args, config, *args):
    run_date = parsed_args.run_date.format("YYYY-MM-DD")
    dest = Path(config["weather"]["dest dir"])
    dest.mkdir(parents=True, exist_ok=True)
    filepath = dest / f"weather_{parsed_args.run_date.format('YYYYMMDD')}.txt"
    get_web_data(config["weather"]["url"], NAME, filepath=filepath)
    if not filepath.read_text().strip():
        raise WorkerError(f"empty forecast: {filepath}")
    filepath.chmod(int(FilePerms(user="rw", group="rw", other="r")))
    logger.debug(f"stored {filepath}")
    return {"run date": run_date, "file": str(filepath)}


if __name__ == "__main__":
    main()  # pragma: no cover
