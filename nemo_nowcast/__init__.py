"""NEMO_Nowcast's package name for nowcast.

Every ``nemo_nowcast.X`` module *is* the module ``nowcast.X`` (the same object in
``sys.modules``), so a system written for NEMO_Nowcast runs unchanged:
``from nemo_nowcast import NowcastWorker``, ``python -m nemo_nowcast.manager
config.yaml``, ``python -m nemo_nowcast.workers.sleep config.yaml``, and
``mock.patch("nemo_nowcast.worker.X")`` patches what nowcast's code uses.
"""

from __future__ import annotations

import sys

import nowcast
from nowcast import __all__, __version__  # noqa: F401

__path__: list[str] = []  # submodules come from the alias finder below, never from a directory

# NEMO_Nowcast's example next workers module, which has no place in nowcast's own
# package (a system's package named nowcast has its own ``nowcast.next_workers``)
_RENAMED = {"nemo_nowcast.next_workers": "nowcast.workers.example_next_workers"}


def _target(fullname: str) -> str:
    return _RENAMED.get(fullname) or "nowcast" + fullname[len("nemo_nowcast") :]


class _AliasLoader:
    """Loads ``nemo_nowcast.X`` as the module ``nowcast.X`` itself."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        import importlib

        module = importlib.import_module(self.target)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # the import system set __spec__ to the alias's; the module keeps its own
        module.__spec__ = self._real_spec

    # what runpy needs for ``python -m nemo_nowcast.X``
    def _real(self):
        import importlib.util

        spec = importlib.util.find_spec(self.target)
        if spec is None or spec.loader is None:
            raise ImportError(f"no module named {self.target!r}", name=self.target)
        return spec

    def get_code(self, fullname: str):
        return self._real().loader.get_code(self.target)

    def is_package(self, fullname: str) -> bool:
        return self._real().submodule_search_locations is not None

    def get_filename(self, fullname: str) -> str:
        return self._real().origin


class _AliasFinder:
    @classmethod
    def find_spec(cls, fullname: str, path=None, target=None):
        if not fullname.startswith("nemo_nowcast."):
            return None
        import importlib.machinery
        import importlib.util

        name = _target(fullname)
        real = importlib.util.find_spec(name)
        if real is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(name),
            origin=real.origin,
            is_package=real.submodule_search_locations is not None,
        )
        spec.has_location = real.has_location
        if real.submodule_search_locations is not None:
            spec.submodule_search_locations = real.submodule_search_locations
        return spec

    @classmethod
    def invalidate_caches(cls) -> None:
        pass


if _AliasFinder not in sys.meta_path:
    sys.meta_path.insert(0, _AliasFinder)


def __getattr__(name: str):
    if name.startswith("_"):
        raise AttributeError(f"module 'nemo_nowcast' has no attribute {name!r}")
    full = f"nemo_nowcast.{name}"
    if full in _RENAMED or nowcast._is_own_module(name):
        import importlib

        return importlib.import_module(full)
    try:
        return getattr(nowcast, name)
    except AttributeError:
        raise AttributeError(f"module 'nemo_nowcast' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
