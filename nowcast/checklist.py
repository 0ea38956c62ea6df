"""The checklist: the state of the day, as the manager keeps it and writes it.

The file holds the checklist alone, as plain YAML, as NEMO_Nowcast's does. It is
rewritten atomically before the manager replies to the messages that changed it.
Each top-level entry's YAML is kept between writes and remade only when the entry
may have changed, so a write costs little more with 10,000 entries than with 10.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import yaml

from nowcast.fileutils import atomic_write
from nowcast.message import to_plain

logger = logging.getLogger(__name__)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_ALL = object()


class Checklist(dict):
    """A dict that notes which of its top-level entries may have changed.

    Reading a mutable entry counts as a possible change (the reader may modify it
    in place), as does any way of reaching all the values at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fragments: dict[Any, bytes] = {}
        self._dirty: Any = _ALL

    def _touch(self, key: Any) -> None:
        if self._dirty is not _ALL:
            self._dirty.add(key)

    def _touch_all(self) -> None:
        self._dirty = _ALL

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if isinstance(value, (dict, list)):
            self._touch(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._touch(key)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._touch(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touch(key)
        return dict.setdefault(self, key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._touch(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple:
        self._touch_all()
        return dict.popitem(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._touch_all()
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        dict.clear(self)
        self._fragments.clear()
        self._touch_all()

    def values(self):
        self._touch_all()
        return dict.values(self)

    def items(self):
        self._touch_all()
        return dict.items(self)

    def copy(self) -> dict:
        self._touch_all()
        return dict(dict.items(self))

    def merge(self, key: str, payload: Any) -> None:
        """Put a worker's payload under ``key``: a dict payload updates a dict
        entry in place; anything else replaces the entry."""
        current = dict.get(self, key)
        if isinstance(current, dict) and isinstance(payload, dict):
            current.update(payload)
            self._touch(key)
        else:
            self[key] = payload

    @property
    def changed(self) -> bool:
        """Whether anything may have changed since the last ``to_yaml``."""
        return self._dirty is _ALL or bool(self._dirty)

    def to_yaml(self) -> bytes:
        """The whole checklist as YAML, remaking only entries that may have changed."""
        dirty = self._dirty
        fragments = self._fragments
        if dirty is _ALL:
            fragments.clear()
            dirty = ()
        else:
            for key in dirty:
                fragments.pop(key, None)
        for key in [k for k in fragments if not dict.__contains__(self, k)]:
            del fragments[key]
        out = []
        for key, value in dict.items(self):
            fragment = fragments.get(key)
            if fragment is None:
                fragment = fragments[key] = _dump_entry(key, value)
            out.append(fragment)
        self._dirty = set()
        return b"".join(out) if out else b"{}\n"

    def as_plain(self) -> dict:
        """The checklist as an ordinary dict (shares the entries)."""
        return dict(dict.items(self))


def _dump_entry(key: Any, value: Any) -> bytes:
    try:
        text = yaml.dump(
            {key: value},
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
        )
    except yaml.YAMLError:
        logger.warning(
            "checklist entry %r holds values YAML cannot write; writing them as text", key
        )
        text = yaml.dump(
            {to_plain(key): to_plain(value)},
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
        )
    return text.encode("utf-8")


def load(path: str) -> Checklist:
    """Read the checklist file; an absent file gives an empty checklist.

    A file that is not a YAML mapping is moved aside (never deleted) and the
    manager starts with an empty checklist; both paths are logged.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        logger.warning("no checklist file at %s; running with an empty checklist", path)
        return Checklist()
    try:
        data = yaml.load(text, Loader=_Loader)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping at the top level, got {type(data).__name__}")
    except (yaml.YAMLError, ValueError) as e:
        aside = f"{path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}"
        os.replace(path, aside)
        logger.error(
            "checklist file %s cannot be read (%s); moved it to %s and running with an "
            "empty checklist",
            path,
            " ".join(str(e).split()),
            aside,
        )
        return Checklist()
    logger.info("checklist read from %s: %d entries", path, len(data))
    return Checklist(data)


def save(checklist: Checklist, path: str) -> None:
    """Write the checklist atomically (temporary file, fsync, rename)."""
    atomic_write(path, checklist.to_yaml())
