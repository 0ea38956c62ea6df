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


class RegistrationError(ConfigError, WorkerError):
    """A worker, or a message type it sends, is not in the config's message registry.

    A worker checks its own registration before it does any work, and each message
    type before it sends it; either way it exits with code 2, sending nothing.
    """


class PayloadError(MessageError, TypeError):
    """A payload holds a value with no text form for the checklist (a bare object)."""


class NoManagerError(NowcastError):
    """A worker gave up waiting for the manager's reply."""


class AlreadyRunningError(NowcastError):
    """Another process holds the lock this one needs (a second manager on the
    same checklist); the text names the lock file and the holder's pid."""
