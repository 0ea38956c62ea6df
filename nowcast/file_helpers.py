"""NEMO_Nowcast's file helpers, reached as ``nowcast.fileutils.<name>``.

``FilePerms`` (POSIX permissions as ``rwx`` strings or an integer), ``mkdir_p``,
``atomic_save`` / ``AtomicSaver`` (write to a part file, rename it into place),
``iter_find_files`` and ``copytree`` (``shutil.copytree`` that accepts an existing
destination). nowcast's own durable writes are ``nowcast.fileutils.atomic_write``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import stat
from collections.abc import Iterator
from typing import Any

__all__ = [
    "AtomicSaver",
    "FilePerms",
    "atomic_rename",
    "atomic_save",
    "copy_tree",
    "copytree",
    "iter_find_files",
    "mkdir_p",
    "replace",
]

_BITS = {"r": 4, "w": 2, "x": 1}


class _Perm:
    """One class of user's permissions (``user``, ``group``, ``other``) as a
    string of ``r``, ``w``, ``x`` in that order."""

    def __init__(self, shift: int) -> None:
        self.shift = shift

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._perms[self.name]

    def __set__(self, obj: Any, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"expected a string of r, w and x, got {value!r}")
        bad = set(value) - set(_BITS)
        if bad:
            raise ValueError(
                f"invalid characters {sorted(bad)!r} in permission {value!r}; "
                f"expected an empty string or some of 'rwx'"
            )
        obj._perms[self.name] = "".join(c for c in "rwx" if c in value)


class FilePerms:
    """POSIX permissions of a file for its user, group and others:
    ``FilePerms(user="rw", group="r", other="")``; ``int()`` gives the mode
    (``0o640`` here). Only the lower nine bits are considered."""

    user = _Perm(6)
    group = _Perm(3)
    other = _Perm(0)

    def __init__(self, user: str = "", group: str = "", other: str = "") -> None:
        self._perms = {"user": "", "group": "", "other": ""}
        self.user, self.group, self.other = user, group, other

    @classmethod
    def from_int(cls, mode: int) -> FilePerms:
        """``FilePerms.from_int(0o644)`` is ``FilePerms('rw', 'r', 'r')``."""
        parts = []
        for shift in (6, 3, 0):
            bits = (mode >> shift) & 7
            parts.append("".join(c for c in "rwx" if bits & _BITS[c]))
        return cls(*parts)

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> FilePerms:
        """The permissions of the file or directory at ``path``."""
        return cls.from_int(stat.S_IMODE(os.stat(path).st_mode))

    def __int__(self) -> int:
        mode = 0
        for descriptor in (FilePerms.user, FilePerms.group, FilePerms.other):
            for c in self._perms[descriptor.name]:
                mode |= _BITS[c] << descriptor.shift
        return mode

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FilePerms):
            return NotImplemented
        return int(self) == int(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"FilePerms(user={self.user!r}, group={self.group!r}, other={self.other!r})"


def mkdir_p(path: str | os.PathLike) -> None:
    """Make ``path`` and its missing parents; an existing directory is fine."""
    os.makedirs(path, exist_ok=True)


def atomic_rename(src: str, dst: str, overwrite: bool = False) -> None:
    """Rename ``src`` to ``dst`` in one step; refuse an existing ``dst`` unless
    ``overwrite``."""
    if overwrite:
        os.replace(src, dst)
        return
    os.link(src, dst)  # fails if dst exists
    os.unlink(src)


def replace(src: str, dst: str) -> None:
    """Put ``src`` in the place of ``dst``, atomically."""
    os.replace(src, dst)


class AtomicSaver:
    """A context manager giving a file to write; on a clean exit the file replaces
    ``dest_path`` in one rename, so readers see the old content or the new.

    Options as NEMO_Nowcast's: ``overwrite`` (default True), ``file_perms`` (mode
    of the new file; default: the old file's, else the umask's), ``part_file``
    (name of the temporary file, in the destination's directory; default
    ``<dest_path>.part``), ``overwrite_part`` (default False: an existing part file
    is an error), ``rm_part_on_exc`` (default True), ``text_mode`` (default False),
    ``buffering`` (default -1).
    """

    def __init__(
        self,
        dest_path: str | os.PathLike,
        *,
        overwrite: bool = True,
        file_perms: int | None = None,
        part_file: str | None = None,
        overwrite_part: bool = False,
        rm_part_on_exc: bool = True,
        text_mode: bool = False,
        buffering: int = -1,
    ) -> None:
        self.dest_path = os.path.abspath(os.fspath(dest_path))
        self.dest_dir = os.path.dirname(self.dest_path)
        self.overwrite = overwrite
        self.file_perms = file_perms
        self.overwrite_part = overwrite_part
        self.rm_part_on_exc = rm_part_on_exc
        self.text_mode = text_mode
        self.buffering = buffering
        self.part_path = (
            os.path.join(self.dest_dir, part_file) if part_file else self.dest_path + ".part"
        )
        self.part_file: Any = None

    def setup(self) -> None:
        """Open the part file (beside the destination)."""
        if not self.overwrite and os.path.lexists(self.dest_path):
            raise FileExistsError(f"{self.dest_path} exists and overwrite is off")
        if self.overwrite_part and os.path.lexists(self.part_path):
            os.unlink(self.part_path)
        perms, chmod = self.file_perms, True
        if perms is None:
            try:
                perms = stat.S_IMODE(os.stat(self.dest_path).st_mode)
            except OSError:
                perms, chmod = 0o666, False  # the umask decides
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
        fd = os.open(self.part_path, flags, perms)
        self.part_file = os.fdopen(fd, "w+" if self.text_mode else "w+b", self.buffering)
        if chmod:
            os.chmod(self.part_path, perms)

    def __enter__(self) -> Any:
        self.setup()
        return self.part_file

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.part_file.close()
        if exc_type is not None:
            if self.rm_part_on_exc:
                _unlink_quietly(self.part_path)
            return
        try:
            atomic_rename(self.part_path, self.dest_path, overwrite=self.overwrite)
        except OSError:
            if self.rm_part_on_exc:
                _unlink_quietly(self.part_path)
            raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_save(dest_path: str | os.PathLike, **kwargs: Any) -> AtomicSaver:
    """``with atomic_save(path) as f: f.write(...)``: see ``AtomicSaver``."""
    return AtomicSaver(dest_path, **kwargs)


def iter_find_files(
    directory: str | os.PathLike, patterns: str | list[str], ignored: str | list | None = None
) -> Iterator[str]:
    """Paths of the files under ``directory`` whose names match one of the glob
    ``patterns`` and none of the ``ignored`` ones."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    ignored = [ignored] if isinstance(ignored, str) else list(ignored or [])
    wanted = re.compile("|".join(fnmatch.translate(p) for p in patterns))
    unwanted = re.compile("|".join(fnmatch.translate(p) for p in ignored)) if ignored else None
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if wanted.match(name) and not (unwanted and unwanted.match(name)):
                yield os.path.join(root, name)


def copy_tree(
    src: str | os.PathLike, dst: str | os.PathLike, symlinks: bool = False, ignore: Any = None
) -> None:
    """``shutil.copytree`` into a destination that may already exist."""
    shutil.copytree(src, dst, symlinks=symlinks, ignore=ignore, dirs_exist_ok=True)


copytree = copy_tree
