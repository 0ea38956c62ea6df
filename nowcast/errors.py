"""The exceptions nowcast raises: one base, a subclass per kind of mistake."""

from __future__ import annotations


class NowcastError(Exception):
    """Base of every error nowcast raises on purpose."""


class ConfigError(NowcastError):
    """A configuration file is missing a key or holds a value of the wrong kind.

    The text names the file, the key, the value and what was expected.
    """


class MessageError(NowcastError):
    """Bytes that are not a well-formed nowcast message."""


class WorkerError(NowcastError):
    """Raised by a worker function that cannot do its job.

    The worker reports its ``failure`` message type to the manager.
    """


class NoManagerError(NowcastError):
    """A worker gave up waiting for the manager's reply."""
