"""Importing a user's module afresh: the next workers module.

``importlib.reload`` runs the new code in the old module's namespace: a function
the edit removed stays, and an edit that defines a new function and then raises
leaves that function in place. ``import_fresh`` runs the module's current source
in a new module object and hands it back only when all of it ran; the caller
swaps it in, or keeps the old one.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any


def import_fresh(name: str) -> ModuleType:
    """Import the module ``name`` from its file as it is now, into a new module
    object, and put it in ``sys.modules``; on any error, ``sys.modules`` is left as
    it was and the error raised."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as python -m does for the directory it runs in
    importlib.invalidate_caches()
    parent, _, _ = name.rpartition(".")
    path = importlib.import_module(parent).__path__ if parent else None
    spec = importlib.machinery.PathFinder.find_spec(name, path) or importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    old = sys.modules.get(name)
    sys.modules[name] = module  # as an import does, for imports of itself while it runs
    try:
        origin = spec.origin or ""
        if origin.endswith(".py") and spec.submodule_search_locations is None:
            # from the source, never a cached .pyc an edit in the same second may match
            with open(origin, "rb") as f:
                code = compile(f.read(), origin, "exec", dont_inherit=True)
            exec(code, module.__dict__)
        else:
            spec.loader.exec_module(module)
    except BaseException:
        if old is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = old
        raise
    return module


def file_stamp(module: Any) -> tuple | None:
    """What changes when ``module``'s file is edited: time, size, inode."""
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
