"""Unit tests for the estuary nowcast system's lib module."""

import arrow
import pytest

import nowcast
from nowcast import lib


def test_forcing_file_name():
    assert lib.forcing_file_name(arrow.get("2026-11-24")) == "forcing_20261124.txt"


def test_mean_temperature():
    assert lib.mean_temperature(["10", "", "12.5"]) == pytest.approx(11.25)
    with pytest.raises(ValueError):
        lib.mean_temperature([""])


def test_package_is_the_systems_and_the_frameworks():
    # the system's own names, and nowcast's, in one package
    assert nowcast.SYSTEM_NAME == "estuary"
    assert nowcast.NowcastWorker.__module__ == "nowcast.worker"
