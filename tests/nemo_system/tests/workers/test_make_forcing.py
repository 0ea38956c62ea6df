"""Unit tests for the estuary nowcast system's make_forcing worker."""

from types import SimpleNamespace
from unittest.mock import Mock, patch

import arrow
import pytest

import nemo_nowcast
from nemo_nowcast import Message
from nowcast.workers import make_forcing


@patch("nowcast.workers.make_forcing.NowcastWorker", spec=True)
def test_main(m_worker):
    m_worker().cli = Mock(name="cli")
    make_forcing.main()
    assert m_worker.call_args[0] == ("make_forcing",)
    m_worker().run.assert_called_once_with(
        make_forcing.make_forcing, make_forcing.success, make_forcing.failure
    )


def test_make_forcing(config, tmp_path):
    weather = tmp_path / "weather_20261124.txt"
    weather.write_text("10\n11\n")
    m_tell_manager = Mock(
        name="tell_manager", return_value=Message("manager", "ack", {"file": str(weather)})
    )
    parsed_args = SimpleNamespace(run_date=arrow.get("2026-11-24"))
    checklist = make_forcing.make_forcing(parsed_args, config, m_tell_manager)
    m_tell_manager.assert_called_once_with("need", "weather")
    assert checklist == {
        "file": str(tmp_path / "forcing_20261124.txt"),
        "mean temperature": 10.5,
    }


def test_missing_weather_is_a_failure(config, tmp_path):
    m_tell_manager = Mock(
        return_value=Message("manager", "ack", {"file": str(tmp_path / "none.txt")})
    )
    parsed_args = SimpleNamespace(run_date=arrow.get("2026-11-24"))
    with pytest.raises(nemo_nowcast.WorkerError):
        make_forcing.make_forcing(parsed_args, config, m_tell_manager)


def test_patching_a_nemo_nowcast_name_reaches_the_worker(config, tmp_path):
    # the worker's NowcastWorker is nemo_nowcast.worker's: patching one patches the other
    with patch("nemo_nowcast.worker.NowcastWorker.tell_manager") as m_tell:
        worker = nemo_nowcast.NowcastWorker("make_forcing", "x")
        worker.tell_manager("need", "weather")
    m_tell.assert_called_once_with("need", "weather")
