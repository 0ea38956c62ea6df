"""Wake up and report success: a no-op worker, for trying out a chain of workers
(for example, launched after nowcast.workers.sleep).

Usage: ``python -m nowcast.workers.awaken config.yaml``
"""

from __future__ import annotations

import logging

from nowcast.worker import NowcastWorker

NAME = "awaken"
logger = logging.getLogger(NAME)


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="nowcast.workers")
    worker.init_cli()
    worker.run(awaken, success, failure)


def success(parsed_args) -> str:
    logger.info("awoke")
    return "success"


def failure(parsed_args) -> str:
    logger.critical("failed to awaken")
    return "failure"


def awaken(parsed_args, config, *args) -> dict:
    return {"awoke": True}  # as NEMO_Nowcast's


if __name__ == "__main__":
    main()
