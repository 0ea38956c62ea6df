"""Downloads for workers: ``get_web_data``, NEMO_Nowcast's, with its retries.

Reached as ``nowcast.worker.get_web_data`` (and ``nowcast.get_web_data``), where
NEMO_Nowcast has it. ``requests`` is imported when a download starts, never at a
worker's start-up.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from nowcast.errors import WorkerError


def get_web_data(
    file_url: str,
    logger_name: str,
    filepath: Path | None = None,
    session: Any = None,
    chunk_size: int = 100 * 1024,
    wait_exponential_multiplier: float = 2,
    wait_retry_max: float = 256,
    wait_exponential_max: float = 60 * 60,
) -> bytes | None:
    """Download ``file_url``: return its content, or, with ``filepath``, write it
    there in chunks of ``chunk_size`` bytes (and return None).

    A connection error or an HTTP error status is retried: the first retry after
    ``wait_exponential_multiplier`` seconds, each next wait that many times longer,
    capped at ``wait_retry_max`` seconds, until the waits add up to
    ``wait_exponential_max`` seconds. Then ``WorkerError`` is raised (the worker
    reports failure), after an ERROR log line naming the URL and the number of
    tries. ``session``: a ``requests.Session`` to reuse connections across calls.
    """
    import requests

    logger = logging.getLogger(logger_name)
    if session is None:
        session = requests.Session()
    retryable = (requests.exceptions.ConnectionError, requests.exceptions.HTTPError, OSError)

    def attempt() -> bytes | None:
        try:
            response = session.get(file_url, stream=True)
            response.raise_for_status()
            if filepath is None:
                return response.content
            with Path(filepath).open("wb") as f:
                for block in response.iter_content(chunk_size=chunk_size):
                    if not block:
                        break
                    f.write(block)
            return None
        except retryable as e:
            logger.debug("received %s from %s", e, file_url)
            raise

    try:
        return attempt()
    except retryable:
        pass
    wait = wait_exponential_multiplier
    waited = wait_exponential_multiplier
    tries = 1
    while waited < wait_exponential_max:
        pause = min(wait, wait_retry_max)
        logger.debug("waiting %s seconds until retry %s", pause, tries)
        time.sleep(pause)
        tries += 1
        try:
            return attempt()
        except retryable:
            wait *= wait_exponential_multiplier
            waited += pause
    logger.error("giving up; download from %s failed %s times", file_url, tries)
    raise WorkerError(f"download from {file_url} failed {tries} times")
