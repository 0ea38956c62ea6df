"""``NextWorker``: a worker for the manager to launch.

The one data class every layer shares (``after_*`` functions return it, the
manager keeps it in its state, supervision and the launchers read it), so it
lives here, below them all, and imports nothing of nowcast's at import time.
"""

from __future__ import annotations

import logging
from typing import Any


class NextWorker:
    """A worker for the manager to launch: ``python -m module config_file *args`` on
    ``host``. Returned by ``after_<worker>`` functions in the next workers module."""

    __slots__ = ("module", "args", "host")

    def __init__(self, module: str, args: list | None = None, host: str = "localhost"):
        self.module = module
        self.args = [] if args is None else args
        self.host = host

    def launch(self, config: Any, logger_name: str):
        """Start the worker without waiting for it; return its ``Popen``."""
        from nowcast.launcher import launch

        return launch(self, config, logging.getLogger(logger_name))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.module, self.args, self.host) == (other.module, other.args, other.host)

    __hash__ = None  # mutable, as NEMO_Nowcast's is

    def __repr__(self) -> str:
        return f"NextWorker(module={self.module!r}, args={self.args!r}, host={self.host!r})"
