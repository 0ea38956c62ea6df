"""nowcast.lock: one manager per checklist."""

from __future__ import annotations

import os

import pytest

from nowcast.errors import AlreadyRunningError, ConfigError
from nowcast.lock import ManagerLock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    path = str(tmp_path / "checklist.yaml.manager-lock")
    first, second = ManagerLock(path), ManagerLock(path)
    first.acquire()
    with pytest.raises(AlreadyRunningError, match=rf"another manager \(pid {os.getpid()}\)"):
        second.acquire()
    first.release()
    second.acquire()  # released: the next one takes it
    second.release()


def test_a_lock_file_that_cannot_be_made_is_a_config_error(tmp_path):
    lock = ManagerLock(str(tmp_path / "no such directory" / "checklist.yaml.manager-lock"))
    with pytest.raises(ConfigError, match="checklist file"):
        lock.acquire()
