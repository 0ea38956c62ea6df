"""nowcast: run a daily chain of jobs (workers) under one manager, unattended.

The public names are those of NEMO_Nowcast, and so are the submodules that are
attributes of the package (``nowcast.cli``, ``nowcast.config``, ...): a system
written for NEMO_Nowcast runs as it is, through the ``nemo_nowcast`` package that
comes with nowcast, or after changing ``nemo_nowcast`` to ``nowcast`` in its
imports. Names and submodules are imported on first use, to keep a worker's
start-up light.

A system's own package may itself be named ``nowcast`` (NEMO_Nowcast's
convention): the two are one package (``_nowcast_path``, docs/porting.md).
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
    "get_web_data",
]

_WHERE = {
    "CommandLineInterface": "nowcast.cli",
    "Config": "nowcast.config",
    "Message": "nowcast.message",
    "NextWorker": "nowcast.next_worker",
    "NowcastWorker": "nowcast.worker",
    "WorkerError": "nowcast.errors",
    "get_web_data": "nowcast.web_data",
}


def __getattr__(name: str):
    import importlib

    module = _WHERE.get(name)
    if module is None:
        if name.startswith("_") or not _is_own_module(name):
            raise AttributeError(f"module 'nowcast' has no attribute {name!r}")
        return importlib.import_module(f"nowcast.{name}")  # a submodule, as NEMO_Nowcast's
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _is_own_module(name: str) -> bool:
    import os

    here = os.path.dirname(__file__)
    return os.path.isfile(os.path.join(here, f"{name}.py")) or os.path.isfile(
        os.path.join(here, name, "__init__.py")
    )


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _merge() -> None:
    try:
        import _nowcast_path
    except ImportError:  # pragma: no cover - nowcast imported from a bare copy of its sources
        return
    _nowcast_path.install()
    _nowcast_path.merge(globals(), "")


_merge()
