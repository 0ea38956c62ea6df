"""Unit tests for the estuary nowcast system's download_weather worker."""

import stat
from types import SimpleNamespace
from unittest.mock import Mock, patch

import arrow
import pytest

import nemo_nowcast
from nowcast.workers import download_weather


@patch("nowcast.workers.download_weather.NowcastWorker", spec=True)
class TestMain:
    def test_instantiate_worker(self, m_worker):
        m_worker().cli = Mock(name="cli")
        download_weather.main()
        args, kwargs = m_worker.call_args
        assert args == ("download_weather",)
        assert list(kwargs.keys()) == ["description"]

    def test_init_cli(self, m_worker):
        m_worker().cli = Mock(name="cli")
        download_weather.main()
        m_worker().init_cli.assert_called_once_with()

    def test_add_run_date_option(self, m_worker):
        m_worker().cli = Mock(name="cli")
        download_weather.main()
        args, kwargs = m_worker().cli.add_date_option.call_args
        assert args == ("--run-date",)
        assert kwargs["default"] == arrow.now().floor("day")

    def test_run_worker(self, m_worker):
        m_worker().cli = Mock(name="cli")
        download_weather.main()
        m_worker().run.assert_called_once_with(
            download_weather.download_weather,
            download_weather.success,
            download_weather.failure,
        )


def test_main_with_the_real_worker_class(monkeypatch):
    # nemo_nowcast.worker.NowcastWorker is the class the worker module uses
    monkeypatch.setattr("sys.argv", ["download_weather", "nowcast.yaml"])
    with patch("nemo_nowcast.worker.NowcastWorker.run") as m_run:
        worker = download_weather.main()
    assert isinstance(worker, nemo_nowcast.NowcastWorker)
    assert worker.cli.parser.prog == "python -m nowcast.workers.download_weather"
    m_run.assert_called_once()


@pytest.mark.parametrize(
    ("function", "msg_type"),
    [(download_weather.success, "success"), (download_weather.failure, "failure")],
)
def test_success_failure(function, msg_type):
    parsed_args = SimpleNamespace(run_date=arrow.get("2026-11-24"))
    with patch("nowcast.workers.download_weather.logger") as m_logger:
        assert function(parsed_args) == msg_type
    assert m_logger.info.called or m_logger.critical.called


class TestDownloadWeather:
    @patch("nowcast.workers.download_weather.get_web_data")
    def test_checklist(self, m_get_web_data, config, tmp_path):
        m_get_web_data.side_effect = lambda url, name, filepath: filepath.write_text("10\n12\n")
        parsed_args = SimpleNamespace(run_date=arrow.get("2026-11-24"))
        checklist = download_weather.download_weather(parsed_args, config)
        path = tmp_path / "data" / "weather" / "weather_20261124.txt"
        assert checklist == {"run date": "2026-11-24", "file": str(path)}
        m_get_web_data.assert_called_once_with(
            "http://localhost:8000/weather.txt", "download_weather", filepath=path
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o664

    @patch("nowcast.workers.download_weather.get_web_data")
    def test_empty_forecast_is_a_failure(self, m_get_web_data, config):
        m_get_web_data.side_effect = lambda url, name, filepath: filepath.write_text("")
        parsed_args = SimpleNamespace(run_date=arrow.get("2026-11-24"))
        with pytest.raises(nemo_nowcast.WorkerError):
            download_weather.download_weather(parsed_args, config)
