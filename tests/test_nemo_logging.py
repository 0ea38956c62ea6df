"""NEMO_Nowcast's distributed logging config: per-process logging ports and a
``logging: publisher`` section, mapped onto nowcast's one log aggregator."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import free_port, stop, wait_for

from nowcast.config import Config
from nowcast.errors import ConfigError
from nowcast.nemo_logging import logging_port, publisher_section


def config_of(data: dict) -> Config:
    config = Config()
    config.file = "nowcast.yaml"
    config._dict = data
    return config


def test_logging_port_in_both_forms():
    assert logging_port(config_of({"zmq": {"ports": {"logging": 5777}}})) == 5777
    nemo = {
        "message_broker": 5560,
        "manager": 5561,
        "scheduler": 5562,
        "workers": [5563, 5564],
        "run_NEMO": ["hpc:5565", "210.15.47.113:5565"],
        "make_files": "hpc:5566",
    }
    assert logging_port(config_of({"zmq": {"ports": {"logging": nemo}}})) == 5560
    nemo["log_aggregator"] = 5570
    assert logging_port(config_of({"zmq": {"ports": {"logging": nemo}}})) == 5570


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"workers": [5563]}, "without a port for the log aggregator"),
        ({"manager": 5561, "run_NEMO": ["hpc"]}, "'zmq: ports: logging: run_NEMO' must be"),
        ({"manager": 70000}, "'zmq: ports: logging: manager' must be"),
        ("5777", "must be a port number from 1 to 65535"),
    ],
)
def test_logging_port_refuses_what_is_wrong_in_one_line(value, words):
    with pytest.raises(ConfigError) as error:
        logging_port(config_of({"zmq": {"ports": {"logging": value}}}))
    assert words in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("nowcast.yaml: ")


def test_publisher_section_without_its_pub_handler():
    publisher = {
        "version": 1,
        "handlers": {
            "console": {"class": "logging.StreamHandler", "level": 100},
            "zmq_pub": {"class": "zmq.log.handlers.PUBHandler", "level": "DEBUG"},
        },
        "root": {"level": "DEBUG", "handlers": ["console", "zmq_pub"]},
        "loggers": {"checklist": {"handlers": ["zmq_pub"]}},
    }
    section = publisher_section(config_of({"logging": {"publisher": publisher}}))
    assert list(section["handlers"]) == ["console"]
    assert section["root"]["handlers"] == ["console"]
    assert section["loggers"]["checklist"]["handlers"] == []
    assert publisher["root"]["handlers"] == ["console", "zmq_pub"]  # the config is untouched
    assert publisher_section(config_of({"logging": {"version": 1}})) is None


NEXT_WORKERS = """
from nemo_nowcast import NextWorker

def after_sleep(msg, config, checklist):
    return []

def after_rotate_logs(msg, config, checklist):
    return []
"""


def nemo_config(tmp_path, ports: dict) -> dict:
    """A config in NEMO_Nowcast's distributed logging form, as its docs show it."""
    rotating = {
        "class": "logging.handlers.RotatingFileHandler",
        "formatter": "simple",
        "backupCount": 7,
    }
    return {
        "checklist file": str(tmp_path / "nowcast_checklist.yaml"),
        "python": sys.executable,
        "logging": {
            "aggregator": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {
                    "simple": {"format": "%(asctime)s %(levelname)s [%(logger_name)s] %(message)s"}
                },
                "handlers": {
                    "info_text": {
                        **rotating,
                        "level": "INFO",
                        "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast.log",
                    },
                    "debug_text": {
                        **rotating,
                        "level": "DEBUG",
                        "filename": "$(NOWCAST.ENV.NOWCAST_LOGS)/nowcast.debug.log",
                    },
                },
                "root": {"level": "DEBUG", "handlers": ["info_text", "debug_text"]},
            },
            "publisher": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {
                    "simple": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"}
                },
                "handlers": {
                    "console": {
                        "class": "logging.StreamHandler",
                        "level": 100,
                        "formatter": "simple",
                        "stream": "ext://sys.stdout",
                    },
                    "zmq_pub": {
                        "class": "zmq.log.handlers.PUBHandler",
                        "level": "DEBUG",
                        "formatter": "simple",
                    },
                },
                "root": {"level": "DEBUG", "handlers": ["console", "zmq_pub"]},
            },
        },
        "zmq": {"host": "localhost", "ports": ports},
        "message registry": {
            "manager": {"ack": "message acknowledged"},
            "next workers module": "next_workers",
            "workers": {
                "sleep": {
                    "checklist key": "sleepyhead",
                    "success": "slept well",
                    "failure": "slept badly",
                    "crash": "crashed",
                },
                "rotate_logs": {
                    "checklist key": "log rotation",
                    "success": "log files rotated",
                    "failure": "failed",
                    "crash": "crashed",
                },
            },
        },
    }


@pytest.mark.timeout(90)
def test_a_nemo_style_distributed_logging_system_runs_and_rotates(tmp_path):
    aggregator_port = free_port()
    ports = {
        "manager": free_port(),
        "workers": free_port(),
        "logging": {
            "message_broker": aggregator_port,
            "manager": free_port(),
            "scheduler": free_port(),
            "workers": [free_port(), free_port()],
            "run_NEMO": ["hpc.example.org:5565"],
        },
    }
    config = tmp_path / "nowcast.yaml"
    config.write_text(yaml.safe_dump(nemo_config(tmp_path, ports), sort_keys=False))
    (tmp_path / "next_workers.py").write_text(NEXT_WORKERS)
    env = {**os.environ, "NOWCAST_LOGS": str(tmp_path)}
    log = tmp_path / "nowcast.log"
    procs = []

    def spawn(module):
        out = open(tmp_path / f"{module}.out", "wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", module, str(config)],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )

    def run_worker(module, *args):
        return subprocess.run(
            [sys.executable, "-m", module, str(config), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        for module in ("log_aggregator", "message_broker", "manager"):
            spawn(f"nemo_nowcast.{module}")
        wait_for(
            lambda: log.exists() and "[manager] next workers module loaded" in log.read_text(),
            timeout=30,
            what="the manager's records through the aggregator",
        )
        result = run_worker("nemo_nowcast.workers.sleep", "--sleep-time", "0")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: "[sleep] slept for 0 seconds" in log.read_text(), what="sleep's record")
        assert f"receiving log records on tcp://127.0.0.1:{aggregator_port}" in log.read_text()
        before = log.read_text()
        result = run_worker("nemo_nowcast.workers.rotate_logs")
        assert result.returncode == 0, result.stdout + result.stderr
        # the aggregator's files were rolled, and it writes on in the new ones
        wait_for(lambda: (tmp_path / "nowcast.log.1").exists(), what="nowcast.log rolled")
        assert (tmp_path / "nowcast.debug.log.1").exists()
        assert (tmp_path / "nowcast.log.1").read_text().startswith(before[:200])
        wait_for(
            lambda: log.exists() and "[rotate_logs] log files rotated" in log.read_text(),
            what="records in the new file",
        )
        checklist = yaml.safe_load((tmp_path / "nowcast_checklist.yaml").read_text())
        assert checklist["log rotation"]["log files"] == [
            str(tmp_path / "nowcast.log"),
            str(tmp_path / "nowcast.debug.log"),
        ]
        for process in procs:
            assert process.poll() is None, (tmp_path / "manager.out").read_text()
    finally:
        for process in procs:
            stop(process)
    outputs = "".join(p.read_text() for p in tmp_path.glob("*.out"))
    assert "Traceback" not in outputs, outputs


def test_a_process_refuses_a_wrong_nemo_logging_mapping_in_one_line(tmp_path):
    ports = {"manager": free_port(), "workers": free_port(), "logging": {"workers": [5563]}}
    config = tmp_path / "nowcast.yaml"
    config.write_text(yaml.safe_dump(nemo_config(tmp_path, ports), sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "nowcast.log_aggregator", str(config)],
        cwd=tmp_path,
        env={**os.environ, "NOWCAST_LOGS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "without a port for the log aggregator" in result.stderr
    assert "Traceback" not in result.stderr, textwrap.shorten(result.stderr, 500)
