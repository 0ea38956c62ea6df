"""Unit tests for the estuary nowcast system's next_workers module."""

from nemo_nowcast import Message, NextWorker
from nowcast import next_workers


class TestAfterDownloadWeather:
    def test_success_launches_a_race_group(self, config):
        checklist = {"weather": {"run date": "2026-11-24"}}
        workers, race = next_workers.after_download_weather(
            Message("download_weather", "success"), config, checklist
        )
        assert workers == [
            NextWorker("nowcast.workers.make_forcing", args=["--run-date", "2026-11-24"]),
            NextWorker("nemo_nowcast.workers.sleep", args=["--sleep-time", "0"]),
        ]
        assert race == {"make_forcing", "sleep"}

    def test_failure_launches_nothing(self, config):
        workers = next_workers.after_download_weather(
            Message("download_weather", "failure"), config, {}
        )
        assert workers == []


def test_after_make_forcing_clears_the_checklist(config):
    workers = next_workers.after_make_forcing(Message("make_forcing", "success"), config, {})
    assert workers == [NextWorker("nemo_nowcast.workers.clear_checklist")]


def test_after_clear_checklist_rotates_logs(config):
    workers = next_workers.after_clear_checklist(Message("clear_checklist", "success"), config, {})
    assert workers == [NextWorker("nemo_nowcast.workers.rotate_logs", args=[], host="localhost")]


def test_every_registered_worker_has_an_after_function(config):
    for worker in config["message registry"]["workers"]:
        assert hasattr(next_workers, f"after_{worker}"), worker
