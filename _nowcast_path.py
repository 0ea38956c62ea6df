"""One ``nowcast`` package, whoever else is called ``nowcast``.

NEMO_Nowcast's convention is that a system's own package is named ``nowcast``
(``nowcast.workers.*``, ``nowcast.next_workers``, ...). This module, imported at
interpreter start-up by ``_nowcast_path.pth`` (installed with the distribution),
makes such a package and this one a single package:

- ``import nowcast`` always runs this distribution's ``nowcast/__init__.py``,
  wherever the other ``nowcast`` is on ``sys.path`` (first, as pytest and
  ``python -m`` put a checkout, or later);
- the package's ``__path__`` (and that of ``nowcast.workers``) is this
  distribution's directory followed by every other ``nowcast`` package directory
  on ``sys.path`` or provided by another import finder (setuptools' editable
  installs), recomputed when either changes, so
  ``nowcast.next_workers`` and ``nowcast.workers.download_x`` are the system's and
  ``nowcast.manager`` and ``nowcast.workers.sleep`` are this distribution's;
- a module name that two of those directories both define is refused with an
  ``ImportError`` naming both files, never picked silently;
- the other package's ``__init__.py`` runs after this distribution's, in the same
  namespace: names it adds are kept; rebinding a public name of nowcast's is
  refused; its dunder names (``__doc__``, ``__version__``...) are not kept.

Only the standard library is imported here, and only ``sys`` and ``os``: this runs
in every Python process of the environment.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
OWN = os.path.join(_HERE, "nowcast")


def _is_framework(entry):
    """Whether ``entry`` (a ``sys.path`` entry) holds a copy of nowcast itself: its
    ``nowcast`` package with this module beside it. Any other ``nowcast`` package
    is a system's."""
    return os.path.isfile(os.path.join(entry, "_nowcast_path.py")) and os.path.isfile(
        os.path.join(entry, "nowcast", "__init__.py")
    )


def framework_dir():
    """nowcast's own package directory: the first copy of nowcast on ``sys.path``
    (as ordinary imports would pick), else the one beside this module."""
    for entry in sys.path:
        if isinstance(entry, str) and _is_framework(entry or "."):
            return os.path.abspath(os.path.join(entry or ".", "nowcast"))
    return OWN


class MergedPath:
    """``__path__`` of a merged package: ``own`` first, then ``<other>/<relative>``
    for each other package named nowcast (``_other_packages``) that holds a
    package there (an ``__init__.py``)."""

    def __init__(self, own, relative):
        self.own = own
        self.relative = relative
        self._key = None
        self._dirs = [own]

    def _compute(self):
        key = (tuple(sys.path), tuple(map(id, sys.meta_path)))
        if key != self._key:
            dirs = [self.own]
            seen = {os.path.realpath(self.own)}
            for parent in _other_packages(key[0]):
                candidate = os.path.join(parent, self.relative) if self.relative else parent
                if not os.path.isfile(os.path.join(candidate, "__init__.py")):
                    continue
                real = os.path.realpath(candidate)
                if real not in seen:
                    seen.add(real)
                    dirs.append(os.path.abspath(candidate))
            self._dirs, self._key = dirs, key
        return self._dirs

    def others(self):
        """The directories of the other package(s), in ``sys.path`` order."""
        return self._compute()[1:]

    def __iter__(self):
        return iter(list(self._compute()))

    def __len__(self):
        return len(self._compute())

    def __getitem__(self, index):
        return self._compute()[index]

    def __contains__(self, item):
        return item in self._compute()

    def __repr__(self):
        return f"MergedPath({self._compute()!r})"

    def append(self, item):  # pkgutil.extend_path and friends
        if item not in self._compute():
            self._dirs.append(item)


def _other_packages(path):
    """Directories of the packages named nowcast that are not nowcast itself: on
    ``path`` (a path entry, or ``python -m`` and pytest putting a checkout first),
    then those other import finders provide (setuptools' editable installs)."""
    for entry in path:
        if not isinstance(entry, str):
            continue
        if os.path.isfile(os.path.join(entry or ".", "nowcast", "__init__.py")):
            if not _is_framework(entry or "."):  # a copy of nowcast is shadowed by the first
                yield os.path.join(entry or ".", "nowcast")
    for finder in sys.meta_path:
        if finder is NowcastFinder or getattr(finder, "__module__", "").startswith(
            ("_frozen_importlib", "importlib", "nemo_nowcast")
        ):
            continue
        try:
            spec = finder.find_spec("nowcast", None)
        except Exception:  # a finder of someone else's; not ours to fail on
            continue
        for location in getattr(spec, "submodule_search_locations", None) or ():
            if isinstance(location, str) and not _is_framework(os.path.dirname(location)):
                yield location


def _defines(directory, name):
    """The file by which ``directory`` defines module ``name``, or None."""
    for candidate in (
        os.path.join(directory, name + ".py"),
        os.path.join(directory, name, "__init__.py"),
    ):
        if os.path.isfile(candidate):
            return candidate
    return None


class NowcastFinder:
    """Finds this distribution's ``nowcast`` before any other, and refuses a
    ``nowcast.X`` (or ``nowcast.workers.X``) that two merged directories define."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if not fullname.startswith("nowcast"):
            return None
        if fullname == "nowcast":
            from _frozen_importlib_external import spec_from_file_location

            own = framework_dir()
            return spec_from_file_location(
                "nowcast",
                os.path.join(own, "__init__.py"),
                submodule_search_locations=MergedPath(own, ""),
            )
        if fullname[7:8] != "." or fullname == "nowcast.workers":
            return None
        parent_name, _, name = fullname.rpartition(".")
        parent = sys.modules.get(parent_name)
        merged = getattr(parent, "__path__", None)
        if not isinstance(merged, MergedPath) or not merged.others():
            return None
        found = [f for f in (_defines(d, name) for d in merged) if f]
        if len(found) > 1:
            raise ImportError(
                f"module {fullname!r} is defined twice: by nowcast ({found[0]}) and by "
                f"another package named nowcast ({found[1]}); a module of a system's "
                f"nowcast package must not have the name of one of nowcast's: rename "
                f"{found[1]}",
                name=fullname,
            )
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


def install():
    """Put the finder ahead of the path finder, once."""
    if NowcastFinder not in sys.meta_path:
        sys.meta_path.insert(0, NowcastFinder)


def merge(namespace, relative):
    """Called at the end of nowcast's own ``__init__`` (``relative`` "") and of
    ``nowcast.workers``' (``relative`` "workers"): give the package its merged
    ``__path__`` and run the other packages' ``__init__.py`` in its namespace."""
    merged = namespace["__path__"]
    if not isinstance(merged, MergedPath):
        merged = MergedPath(merged[0], relative)
        namespace["__path__"] = merged
    for directory in merged.others():
        _run_other_init(namespace, os.path.join(directory, "__init__.py"))


def _run_other_init(namespace, filename):
    with open(filename, "rb") as f:
        source = f.read()
    if not source.strip():
        return
    before = dict(namespace)
    own = os.path.dirname(namespace["__file__"])
    protected = set(namespace.get("__all__", ())) | {
        name[:-3] if name.endswith(".py") else name
        for name in os.listdir(own)
        if name.endswith(".py") or os.path.isfile(os.path.join(own, name, "__init__.py"))
    }
    code = compile(source, filename, "exec")
    exec(code, namespace)
    for key, value in list(namespace.items()):
        if key.startswith("__") and key.endswith("__"):
            if key in before:
                namespace[key] = before[key]
            elif key not in ("__builtins__",):
                del namespace[key]
            continue
        if key in before:
            clash = before[key] is not value
        elif key in protected and "__getattr__" in before:
            clash = before["__getattr__"](key) is not value
        elif key in protected:
            clash = sys.modules.get(f"{namespace['__name__']}.{key}") is not value
        else:
            clash = False
        if clash:
            namespace.clear()
            namespace.update(before)
            raise ImportError(
                f"{filename} binds {key!r}, a name of nowcast's own package "
                f"{namespace['__name__']}; rename it in {filename}",
                name=namespace["__name__"],
            )


install()
