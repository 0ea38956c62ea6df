"""Durable file writes, and what a process does at start with files a crash or a
stranger left behind (moved aside, never deleted; temporary files removed)."""

from __future__ import annotations

import os
import re


def atomic_write(path: str | os.PathLike, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash at any instant leaves either
    the old content or the new, never a mix or an empty file.

    The data goes to a temporary file in the same directory, is flushed to disk,
    then renamed over ``path``.
    """
    path = os.fspath(path)
    os.replace(write_temporary(path, data), path)
    if sync_dir:
        fsync_dir(os.path.dirname(path) or ".")


def write_temporary(path: str, data: bytes) -> str:
    """Write ``data`` to a temporary file beside ``path`` and flush it to disk;
    return its name, for renaming over ``path``."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_synced(fd, data)
    except OSError:
        os.unlink(tmp)  # a disk full must not be made fuller by a half-written file
        raise
    finally:
        os.close(fd)
    return tmp


def write_temporaries(files: list[tuple[str, bytes]]) -> list[str]:
    """``write_temporary`` for each ``(path, data)`` of ``files``, the flushes to
    disk overlapping: every file's data is written and its write-back to disk
    started before the first is waited for, so the waits mostly coincide.
    Returns their names, in order; on failure none is left."""
    written: list[tuple[str, int]] = []
    try:
        for path, data in files:
            directory = os.path.dirname(path) or "."
            tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            written.append((tmp, fd))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if len(files) > 1:
                _start_write_back(fd)
        for _, fd in written:
            sync(fd)
    except OSError:
        for tmp, _ in written:
            try:
                os.unlink(tmp)  # a disk full must not be made fuller by half-written files
            except OSError:
                pass
        raise
    finally:
        for _, fd in written:
            os.close(fd)
    return [tmp for tmp, _ in written]


def _start_write_back(fd: int) -> None:
    """Have the kernel start writing ``fd``'s data to disk without waiting for it
    (Linux starts write-back for POSIX_FADV_DONTNEED); elsewhere, nothing."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError):
        pass


def append_durably(path: str, data: bytes) -> None:
    """Append ``data`` to ``path`` and flush it to disk; on failure the file is cut
    back to its old length, so no half line is left for the next append."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        append_synced(fd, data)
    finally:
        os.close(fd)


def append_synced(fd: int, data: bytes) -> None:
    """``append_durably`` to a file already open for appending at ``fd``."""
    size = os.fstat(fd).st_size
    try:
        write_synced(fd, data)
    except OSError:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise


def write_synced(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` and flush it to disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    sync(fd)


# fdatasync skips metadata a rename does not need (times); fsync where it is missing
sync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(directory: str) -> None:
    """Flush a directory's entries, so a rename in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_aside(path: str) -> str:
    """Rename ``path`` to ``<path>.unreadable-<time>`` (never over an earlier one);
    return the new name. Raises ``OSError`` when it cannot be renamed."""
    import time

    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside, number = f"{path}.unreadable-{stamp}", 1
    while os.path.lexists(aside):
        number += 1
        aside = f"{path}.unreadable-{stamp}-{number}"
    os.replace(path, aside)
    return aside


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove the temporary files ``write_temporary`` left beside ``path`` when its
    process was killed in the middle of a write (those of a live process other
    than this one are left alone); return the names removed."""
    directory = os.path.dirname(path) or "."
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\.(\d+)\.tmp")
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        pid = int(match[1])
        if pid != os.getpid() and _alive(pid):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            continue
        removed.append(os.path.join(directory, name))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no such pid can exist
        return False
    except PermissionError:
        return True
    return True


def __getattr__(name: str):
    # NEMO_Nowcast's file helpers (FilePerms, atomic_save, ...), imported when used
    from nowcast import file_helpers

    if name in file_helpers.__all__:
        return getattr(file_helpers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
