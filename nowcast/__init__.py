"""nowcast: run a daily chain of jobs (workers) under one manager, unattended.

The public names are those of NEMO_Nowcast, so a system written for it runs on
nowcast after changing ``nemo_nowcast`` to ``nowcast`` in its imports. They are
imported on first use, to keep a worker's start-up light.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "CommandLineInterface",
    "Config",
    "Message",
    "NextWorker",
    "NowcastWorker",
    "WorkerError",
]

_WHERE = {
    "CommandLineInterface": "nowcast.cli",
    "Config": "nowcast.config",
    "Message": "nowcast.message",
    "NextWorker": "nowcast.worker",
    "NowcastWorker": "nowcast.worker",
    "WorkerError": "nowcast.errors",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'nowcast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
