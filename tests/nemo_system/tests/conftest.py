"""Fixtures for the estuary nowcast system's tests."""

from pathlib import Path

import pytest

import nemo_nowcast


@pytest.fixture
def config(monkeypatch, tmp_path):
    """The system's config, loaded as its processes load it."""
    monkeypatch.setenv("NOWCAST_LOGS", str(tmp_path))
    monkeypatch.setenv("NOWCAST_ENV", str(tmp_path / "env"))
    monkeypatch.setenv("NOWCAST_DATA", str(tmp_path / "data"))
    config = nemo_nowcast.Config()
    config.load(Path(__file__).parent.parent / "config" / "nowcast.yaml")
    return config
