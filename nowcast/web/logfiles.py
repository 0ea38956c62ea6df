"""A run's log lines, found in the log files the config's ``logging`` section names.

Lines are taken from the files of every handler with a ``filename`` (and their
rotated copies ``.1`` ... ``.7``), when they start with a time stamp
(``%(asctime)s``, the default format) inside the run's time span and mention the
worker's name. Lines without a time stamp (a traceback) go with the line before.
Files are read from their end, at most a few megabytes each: this is for a look,
not for an archive.
"""

from __future__ import annotations

import os
import re
import time

from nowcast.config import Config

# Most bytes read from the end of one log file.
MAX_BYTES = 4 * 1024 * 1024
# Most lines returned for one run.
MAX_LINES = 200
_STAMP = re.compile(rb"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?")


def log_files(config: Config) -> list[str]:
    """The files the config's logging handlers write, each once, in the config's order
    (the aggregator's first)."""
    section = config.get("logging")
    found: list[str] = []
    if not isinstance(section, dict):
        return found
    sections = [section]
    if isinstance(section.get("aggregator"), dict):
        sections.insert(0, section["aggregator"])
    for part in sections:
        handlers = part.get("handlers")
        if not isinstance(handlers, dict):
            continue
        for handler in handlers.values():
            if isinstance(handler, dict) and isinstance(handler.get("filename"), str):
                if handler["filename"] not in found:
                    found.append(handler["filename"])
    return found


def excerpt(
    config: Config,
    worker: str,
    begin: float,
    end: float | None,
    pid: int | None = None,
    limit: int = MAX_LINES,
) -> dict:
    """The log lines of ``worker`` from ``begin`` to ``end`` (now, if running), from
    the first log file that has any: ``{"file": path, "lines": [...]}``."""
    end = time.time() if end is None else end
    words = [f"[{worker}]".encode(), worker.encode()]
    if pid:
        words.append(f" {pid} ".encode())
    for path in log_files(config):
        lines = []
        for candidate in [path] + [f"{path}.{n}" for n in range(1, 8)]:
            lines = _matching(candidate, words, begin - 1, end + 1, limit)
            if lines:
                break
            if _starts_before(candidate, begin):
                break  # older copies are older still
        if lines:
            return {"file": path, "lines": lines}
    return {"file": None, "lines": []}


def _read_tail(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                f.seek(size - MAX_BYTES)
                f.readline()  # a partial line
            return f.read()
    except OSError:
        return b""


def _stamp(line: bytes) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    try:
        moment = time.mktime(
            time.strptime(match.group(1).decode().replace("T", " "), "%Y-%m-%d %H:%M:%S")
        )
    except ValueError:
        return None
    fraction = match.group(2)
    return moment + (int(fraction) / 10 ** len(fraction) if fraction else 0)


def _starts_before(path: str, moment: float) -> bool:
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError:
        return False
    stamp = _stamp(first)
    return stamp is not None and stamp < moment


def _matching(path: str, words: list[bytes], begin: float, end: float, limit: int) -> list[str]:
    found: list[str] = []
    keep = False
    for line in _read_tail(path).splitlines():
        stamp = _stamp(line)
        if stamp is None:
            if keep:
                found.append(line.decode("utf-8", "replace"))
            continue
        keep = begin <= stamp <= end and any(w in line for w in words)
        if keep:
            found.append(line.decode("utf-8", "replace"))
    return found[-limit:]
