"""The checklist: the state of the day, as the manager keeps it and writes it.

The file holds the checklist alone, as plain YAML, as NEMO_Nowcast's does. It is
rewritten atomically before the manager replies to the messages that changed it.
Each top-level entry's YAML is kept between writes and remade only when the entry
may have changed, so a write costs little more with 10,000 entries than with 10.
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
from typing import Any

import yaml

from nowcast.message import to_plain, yaml_loader

logger = logging.getLogger(__name__)

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_ALL = object()
_MISSING = object()


class Checklist(dict):
    """A dict that notes which of its entries may have changed since it was last
    written, so only those are turned into YAML again.

    Reading a mutable entry counts as a possible change to all of it (the reader
    may modify it in place), as does any way of reaching all the values at once.
    ``merge`` marks only the sub-keys its payload holds.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fragments: dict[Any, bytes] = {}  # whole entries
        # large dict entries, kept as (sub-key -> index, fragments) with the header first
        self._parts: dict[Any, tuple[dict, list[bytes]]] = {}
        self._stale_parts: dict[Any, set] = {}  # sub-keys to remake in those
        self._dirty: Any = _ALL  # entries that may have changed, or _ALL
        self._dirty_parts: dict[Any, set] = {}  # sub-keys changed by merge
        self._out: list[bytes] = []  # the fragments in checklist order
        self._position: dict[Any, int] = {}  # key -> index in _out
        # _out joined _BLOCK fragments at a time (None: to join again), so a write
        # joins a few long pieces, not every entry's
        self._blocks: list[bytes | None] = []
        self._reorder = True  # keys were added or removed since the last layout
        self._undo: list[tuple] | None = None  # how to undo the changes since begin()
        self._saved: set = set()  # entries whose value before begin() is in _undo

    # all or nothing: the changes of one message and its after_* function

    def begin(self) -> None:
        """Start keeping what is needed to undo the changes that follow."""
        self._undo, self._saved = [], set()

    def end(self) -> None:
        """Keep the changes made since ``begin``."""
        self._undo, self._saved = None, set()

    def rollback(self) -> None:
        """Undo every change made since ``begin``."""
        undo, self._undo = self._undo or [], None
        self._saved = set()
        for step in reversed(undo):
            if step[0] == "entry":
                _, key, old = step
                if old is _MISSING:
                    if dict.__contains__(self, key):
                        del self[key]
                else:
                    self[key] = old
            else:
                _, key, sub_key, old = step
                entry = dict.get(self, key)
                if isinstance(entry, dict):
                    if old is _MISSING:
                        entry.pop(sub_key, None)
                    else:
                        entry[sub_key] = old
                    self._touch(key)

    def _save(self, key: Any) -> None:
        """Before ``key``'s entry may change: keep a copy of it, once per ``begin``."""
        if self._undo is None or key in self._saved:
            return
        self._saved.add(key)
        old = dict.get(self, key, _MISSING)
        if isinstance(old, (dict, list, set)):
            old = copy.deepcopy(old)
        self._undo.append(("entry", key, old))

    def _save_all(self) -> None:
        if self._undo is not None:
            for key in list(dict.keys(self)):
                self._save(key)

    def _touch(self, key: Any) -> None:
        if self._dirty is not _ALL:
            self._dirty.add(key)

    def _touch_all(self) -> None:
        self._dirty = _ALL

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        if isinstance(value, (dict, list)):
            if self._undo is not None and key not in self._saved:
                self._save(key)
                value = dict.__getitem__(self, key)
            self._touch(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __setitem__(self, key: Any, value: Any) -> None:
        self._save(key)
        if not dict.__contains__(self, key):
            self._reorder = True
        dict.__setitem__(self, key, value)
        self._touch(key)

    def __delitem__(self, key: Any) -> None:
        self._save(key)
        dict.__delitem__(self, key)
        self._reorder = True
        self._touch(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._save(key)
        if not dict.__contains__(self, key):
            self._reorder = True
        self._touch(key)
        return dict.setdefault(self, key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self._save(key)
        self._reorder = True
        self._touch(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple:
        self._save_all()
        self._touch_all()
        return dict.popitem(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._save_all()
        self._touch_all()
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        self._save_all()
        dict.clear(self)
        self._touch_all()

    def values(self):
        self._save_all()
        self._touch_all()
        return dict.values(self)

    def items(self):
        self._save_all()
        self._touch_all()
        return dict.items(self)

    def copy(self) -> dict:
        self._save_all()
        self._touch_all()
        return dict(dict.items(self))

    def merge(self, key: str, payload: Any) -> None:
        """Put a worker's payload under ``key``: a dict payload updates a dict
        entry in place; anything else replaces the entry."""
        current = dict.get(self, key)
        if isinstance(current, dict) and isinstance(payload, dict):
            if self._undo is not None and key not in self._saved:
                self._undo.extend(
                    ("sub", key, sub_key, current.get(sub_key, _MISSING)) for sub_key in payload
                )
            current.update(payload)
            if self._dirty is not _ALL and key not in self._dirty:
                self._dirty_parts.setdefault(key, set()).update(payload)
        else:
            self[key] = payload

    def mark_all_changed(self) -> None:
        """Make the next ``to_yaml`` remake every entry (a write of it was lost)."""
        self._touch_all()

    @property
    def changed(self) -> bool:
        """Whether anything may have changed since the last ``to_yaml``."""
        return self._dirty is _ALL or bool(self._dirty) or bool(self._dirty_parts)

    def to_yaml(self, head: bytes = b"", tail: bytes = b"") -> bytes:
        """The whole checklist as YAML, remaking only what may have changed
        (between ``head`` and ``tail``, joined in the same pass).

        The fragments are kept in checklist order between calls; when no key was
        added or removed, only the changed positions are remade.
        """
        if self._dirty is _ALL:
            self._fragments.clear()
            self._parts.clear()
            self._stale_parts.clear()
            self._rebuild()
        else:
            for key in self._dirty:
                self._fragments.pop(key, None)
                self._parts.pop(key, None)
            for key, sub_keys in self._dirty_parts.items():
                if key in self._parts:
                    self._stale_parts.setdefault(key, set()).update(sub_keys)
                else:
                    self._fragments.pop(key, None)
            changed = self._dirty.union(self._dirty_parts)
            if self._reorder or any(key not in self._position for key in changed):
                self._rebuild()
            else:
                self._prerender(changed)
                for key in changed:
                    position = self._position[key]
                    self._out[position] = self._entry(key)
                    self._blocks[position // _BLOCK] = None
        self._dirty = set()
        self._dirty_parts = {}
        self._reorder = False
        if not self._out:
            return head + b"{}\n" + tail
        out, blocks = self._out, self._blocks
        for i, block in enumerate(blocks):
            if block is None:
                blocks[i] = b"".join(out[i * _BLOCK : (i + 1) * _BLOCK])
        return b"".join((head, *blocks, tail))

    def _rebuild(self) -> None:
        """Lay out every entry afresh (keys were added, removed or reordered)."""
        for cache in (self._fragments, self._parts):
            for key in [k for k in cache if not dict.__contains__(self, k)]:
                del cache[key]
        self._prerender(dict.keys(self))
        self._out = [self._entry(key) for key in dict.keys(self)]
        self._position = {key: i for i, key in enumerate(dict.keys(self))}
        self._blocks = [None] * -(-len(self._out) // _BLOCK)

    def _split(self, key: Any, value: Any) -> bool:
        """Whether ``key``'s entry is cached one sub-key at a time."""
        return key in self._parts or (
            isinstance(value, dict) and len(value) >= _SPLIT_AT and _plain_key(key)
        )

    def _prerender(self, keys: Any) -> None:
        """Make the missing whole-entry fragments of ``keys`` in one YAML dump."""
        missing = []
        for key in keys:
            if key not in self._fragments:
                value = dict.__getitem__(self, key)
                if not self._split(key, value):
                    missing.append((key, value))
        for (key, _), fragment in zip(missing, _dump_each(missing), strict=True):
            self._fragments[key] = fragment

    def _entry(self, key: Any) -> bytes:
        """One top-level entry's YAML, from the caches where they are valid."""
        value = dict.__getitem__(self, key)
        if self._split(key, value):
            return self._entry_from_parts(key, value)
        fragment = self._fragments.get(key)
        if fragment is None:
            fragment = self._fragments[key] = _plain_item(key, value) or _dump({key: value})
        return fragment

    def _entry_from_parts(self, key: str, value: dict) -> bytes:
        """A large dict entry, written from one cached fragment per sub-key, kept
        in order; only the sub-keys ``merge`` changed are remade, and sub-keys
        added at the end are appended to the entry's bytes."""
        parts = self._parts.get(key)
        stale = self._stale_parts.pop(key, ())
        if parts is not None:
            position, fragments, joined = parts
            changed = [k for k in stale if k in position]
            added = len(value) - len(position)
            new = list(itertools.islice(reversed(value), added))[::-1] if added > 0 else []
            if (
                added >= 0
                and len(changed) + added == len(stale)
                and all(k in value for k in changed)
                and all(k in stale and k not in position for k in new)
            ):
                items = [(k, value[k]) for k in changed + new]
                made = _dump_each(items, indent=True)
                for sub_key, fragment in zip(changed, made[: len(changed)], strict=True):
                    fragments[position[sub_key]] = fragment
                for sub_key, fragment in zip(new, made[len(changed) :], strict=True):
                    position[sub_key] = len(fragments)
                    fragments.append(fragment)
                if changed:
                    joined = b"".join(fragments)
                elif new:
                    joined += b"".join(made)
                self._parts[key] = (position, fragments, joined)
                return joined
        position, fragments = {}, [key.encode("utf-8") + b":\n"]
        fragments.extend(_dump_each(list(value.items()), indent=True))
        for index, sub_key in enumerate(value, 1):
            position[sub_key] = index
        joined = b"".join(fragments)
        self._parts[key] = (position, fragments, joined)
        return joined

    def as_plain(self) -> dict:
        """The checklist as an ordinary dict (shares the entries)."""
        return dict(dict.items(self))


# Dict entries with at least this many sub-keys are cached one sub-key at a time.
_SPLIT_AT = 16
# Top-level entries joined into one piece of the file's bytes, kept between writes.
_BLOCK = 64
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,99}")


def _plain_key(key: Any) -> bool:
    """Whether ``key`` is written by YAML as itself, so it can head an entry."""
    return (
        isinstance(key, str)
        and _PLAIN_KEY.fullmatch(key) is not None
        and not key.endswith((" ", "."))
        and key.lower() not in _YAML_WORDS
    )


_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def _indented(fragment: bytes) -> bytes:
    """A top-level entry's YAML indented to sit under a top-level key."""
    lines = fragment.splitlines(keepends=True)
    return b"".join(b"  " + line for line in lines)


def _dump_each(items: list[tuple[Any, Any]], indent: bool = False) -> list[bytes]:
    """``key: value`` YAML for each item, as ``_dump`` makes it one at a time: the
    plain items (``_plain_item``) without PyYAML, the others from one dump of
    them all (the fixed cost of a dump is most of a small one's).

    The dump is cut where a line starts a new top-level key; when the pieces do
    not come out one per item, each item is dumped on its own instead.
    """
    made = [_plain_item(k, v) for k, v in items]
    if None not in made:
        return [_indented(m) for m in made] if indent else made
    if any(made):
        rest = iter(_dump_each([i for i, m in zip(items, made, strict=True) if m is None], indent))
        return [(_indented(m) if indent else m) if m else next(rest) for m in made]
    if len(items) > 1:
        try:
            # without anchors: a value shared by two items must be written in each
            text = _dump_text(dict(items), _UnsharedDumper)
        except Exception:  # each item on its own says which one cannot be written
            text = None
        if text is not None:
            pieces = _top_level_pieces(text)
            if len(pieces) == len(items) and len(items) == len({k for k, _ in items}):
                return [_indented(p) if indent else p for p in pieces]
    return [_indented(_dump({k: v})) if indent else _dump({k: v}) for k, v in items]


# Text YAML writes as itself, as a value: letters, digits and ``_./-``, not
# starting with a digit, a dot or a dash (which could read as a number or more).
_PLAIN_TEXT = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]{0,199}")


def _plain_item(key: Any, value: Any) -> bytes | None:
    """``key: value`` as ``_dump`` writes it, made without PyYAML, for a plain key
    with a whole number, a boolean, None or plain text, or a mapping of such
    keys and values (most of what workers report); None for anything else."""
    text = _plain_lines(key, value, "")
    return None if text is None else text.encode()


def _plain_lines(key: Any, value: Any, indent: str, depth: int = 0) -> str | None:
    """The YAML lines of ``key: value`` at ``indent``, or None (see ``_plain_item``)."""
    if type(value) is dict:
        if depth >= 8 or not _plain_key(key):
            return None
        if not value:
            return f"{indent}{key}: {{}}\n"
        inner = indent + "  "
        lines = [f"{indent}{key}:\n"]
        for k, v in value.items():
            line = _plain_lines(k, v, inner, depth + 1)
            if line is None:
                return None
            lines.append(line)
        return "".join(lines)
    text = _plain_scalar(value)
    if text is None or not _plain_key(key):
        return None
    return f"{indent}{key}: {text}\n"


def _plain_scalar(value: Any) -> str | None:
    kind = type(value)
    if kind is int:
        if not -_BIG < value < _BIG:
            return None
        text = str(value)
    elif kind is str:
        if _PLAIN_TEXT.fullmatch(value) is None or value.lower() in _YAML_WORDS:
            return None
        text = value
    elif kind is bool:
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    else:
        return None
    return text


_BIG = 10**18


def _top_level_pieces(text: bytes) -> list[bytes]:
    """Cut a block mapping's YAML into its entries: a new entry starts on a line
    that is not indented, not empty, and not a sequence item (PyYAML writes those
    of a top-level value unindented) or the value of an explicit ``?`` key."""
    pieces: list[list[bytes]] = []
    for line in text.splitlines(keepends=True):
        if line[:1] not in (b" ", b"\n", b"") and not line.startswith(
            (b"- ", b"-\n", b": ", b":\n")
        ):
            pieces.append([line])
        elif pieces:
            pieces[-1].append(line)
        else:
            return []
    return [b"".join(p) for p in pieces]


def _dump(data: dict) -> bytes:
    try:
        # as _dump_each's one dump of many entries writes it: a value an entry
        # holds twice is written whole each time, never as an anchor and alias,
        # so an entry's bytes do not depend on which other entries changed with it
        return _dump_text(data, _UnsharedDumper)
    except Exception:  # YAMLError, a value that holds itself, what user code may put in it
        pass
    try:
        return _dump_text(data)  # a value that holds itself is written with an alias
    except Exception:
        pass
    try:
        text = _dump_text(to_plain(data))
        logger.warning(
            "checklist entry %r holds values YAML cannot write; writing them as text", list(data)
        )
        return text
    except Exception as e:
        # only an after_* function can put such a thing in the checklist (messages are
        # checked before they are applied); writing nothing at all would be worse
        logger.error(
            "checklist entry %r cannot be written (%s: %s); writing a placeholder instead",
            [ascii(k) for k in data],
            type(e).__name__,
            ascii(str(e))[:200],
        )
        return _dump_text({ascii(k): f"unwritable value ({type(e).__name__})" for k in data})


class _UnsharedDumper(_Dumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump_text(data: dict, dumper: type = _Dumper) -> bytes:
    text = yaml.dump(
        data,
        Dumper=dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
    )
    return text.encode("utf-8")


# Line width for YAML; wide, so long values stay on one line for grep.
_WIDTH = 4096


# nowcast writes these first and last, so a file cut short by anything else is
# told from a whole one (comments: NEMO_Nowcast and any YAML reader skip them)
HEADER = b"# checklist written by nowcast; its last line is '# end of checklist'\n"
END = b"# end of checklist\n"


def to_file(checklist: Checklist) -> bytes:
    """The bytes of the checklist file: the checklist's YAML between ``HEADER``
    and ``END``."""
    return checklist.to_yaml(HEADER, END)


def load(path: str) -> Checklist:
    """Read the checklist file; an absent file gives an empty checklist.

    Any file that cannot be taken whole (not readable, not UTF-8, not YAML, not a
    mapping, or one nowcast wrote that does not end with ``END``: cut short by
    another program) is moved aside to ``<file>.unreadable-<time>``, never
    deleted, with one ERROR line, and the manager starts with an empty checklist.

    :raises ConfigError: the file can be neither read nor moved aside.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        logger.warning("no checklist file at %s; running with an empty checklist", path)
        return Checklist()
    except OSError as e:
        return _unreadable(path, f"it cannot be read: {e.strerror}")
    if HEADER.startswith(text[: len(HEADER)]) and not text.endswith(END):
        # nowcast's own file (or nothing at all: no YAML writer makes an empty file)
        return _unreadable(
            path,
            f"it does not end with the line {END.decode().strip()!r} that nowcast writes "
            f"last: it was cut short by another program (or edited without that line), "
            f"so entries may be missing",
        )
    try:
        data = yaml.load(text, Loader=yaml_loader())  # libyaml's, where it is safe
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping at the top level, got {type(data).__name__}")
    except Exception as e:  # any bytes: the YAML reader raises more than YAMLError
        return _unreadable(path, " ".join(str(e).split())[:300] or type(e).__name__)
    logger.info("checklist read from %s: %d entries", path, len(data))
    return Checklist(data)


def _unreadable(path: str, why: str) -> Checklist:
    from nowcast.errors import ConfigError
    from nowcast.fileutils import move_aside

    try:
        aside = move_aside(path)
    except OSError as e:
        raise ConfigError(
            f"checklist file {path} cannot be used ({why}) and cannot be moved aside "
            f"({e.strerror}); move it away by hand"
        ) from None
    logger.error(
        "checklist file %s cannot be used (%s); moved it to %s and running with an empty checklist",
        path,
        why,
        aside,
    )
    return Checklist()
