"""nowcast.config: loading, environment variables, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nowcast.config import Config, require_port, require_registry, require_zmq
from nowcast.errors import ConfigError
from nowcast.logs import configure


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nowcast.yaml"
    path.write_text(text)
    return path


def test_env_vars_are_replaced_in_every_string_value(tmp_path, monkeypatch):
    monkeypatch.setenv("NOWCAST_LOGS", "/var/log/nowcast")
    monkeypatch.setenv("RUN", "nowcast")
    path = write(
        tmp_path,
        "checklist file: $(NOWCAST.ENV.NOWCAST_LOGS)/checklist.yaml\n"
        "deep:\n  deeper: [plain, '$(NOWCAST.ENV.RUN)-$(NOWCAST.ENV.RUN)']\n"
        "number: 5\n",
    )
    config = Config()
    config.load(path)
    assert config["checklist file"] == "/var/log/nowcast/checklist.yaml"
    assert config["deep"]["deeper"] == ["plain", "nowcast-nowcast"]
    assert config["number"] == 5


def test_unset_env_var_raises_key_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("NOWCAST_NOT_SET", raising=False)
    path = write(tmp_path, "logging:\n  file: $(NOWCAST.ENV.NOWCAST_NOT_SET)/x.log\n")
    with pytest.raises(KeyError) as error:
        Config().load(path)
    assert "NOWCAST_NOT_SET" in str(error.value)
    assert "'logging: file'" in str(error.value)


def test_partial_file_with_empty_handlers_loads_and_configures_logging(tmp_path):
    import logging

    path = write(
        tmp_path,
        "logging:\n  version: 1\n  handlers: []\n"
        "  loggers:\n    partial_config_test:\n      level: ERROR\n",
    )
    config = Config()
    config.load(path)
    assert config["logging"]["handlers"] == []
    logger = logging.getLogger("partial_config_test")
    before = logger.level
    try:
        assert configure(config).startswith("writing log messages ")
        assert logger.level == logging.ERROR  # the section was applied
        assert not logger.isEnabledFor(logging.WARNING)
    finally:
        logger.setLevel(before)


def test_dict_interface_and_key_order(tmp_path):
    path = write(tmp_path, "zebra: 1\napple: 2\nmango: 3\n")
    config = Config()
    config.load(str(path))
    assert list(config._dict) == ["zebra", "apple", "mango"]
    assert config.file == str(path)
    assert "apple" in config and "pear" not in config
    assert config.get("pear") is None and config.get("pear", 7) == 7
    config["pear"] = 4
    assert config["pear"] == 4


def test_file_is_kept_exactly_as_given(tmp_path):
    path = write(tmp_path, "a: 1\n")
    config = Config()
    config.load(path)
    assert config.file is path


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "a: [unclosed\n")
    with pytest.raises(ConfigError, match=str(path)):
        Config().load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Config().load(tmp_path / "absent.yaml")


def test_require_errors_name_file_key_and_value(tmp_path):
    path = write(tmp_path, "zmq:\n  host: localhost\n  ports:\n    manager: abc\n    workers: 5\n")
    config = Config()
    config.load(path)
    with pytest.raises(ConfigError) as error:
        require_zmq(config)
    text = str(error.value)
    assert str(path) in text and "'zmq: ports: manager'" in text and "'abc'" in text
    assert "port number" in text
    with pytest.raises(ConfigError, match="missing key 'zmq: ports: logging'"):
        require_port(config, "zmq", "ports", "logging")


def test_require_registry_checks_worker_entries(tmp_path):
    path = write(
        tmp_path,
        "message registry:\n  next workers module: nw\n  workers:\n    sleep: oops\n",
    )
    config = Config()
    config.load(path)
    with pytest.raises(ConfigError, match="'message registry: workers: sleep' must be a mapping"):
        require_registry(config)


def test_the_log_destinations_are_named(tmp_path):
    import logging

    path = write(
        tmp_path,
        "logging:\n  version: 1\n  handlers:\n"
        "    console: {class: logging.StreamHandler, stream: ext://sys.stderr}\n"
        f"    file: {{class: logging.FileHandler, filename: {tmp_path}/a.log}}\n"
        "  root: {level: INFO, handlers: [console, file]}\n",
    )
    config = Config()
    config.load(path)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # pytest's own
    try:
        assert configure(config) == f"writing log messages to the console and {tmp_path}/a.log"
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved


def test_yaml_errors_name_the_file(tmp_path):
    path = write(tmp_path, "zmq: [1,\n")
    with pytest.raises(ConfigError) as error:
        Config().load(path)
    assert f'in "{path}", line' in str(error.value)
    assert "<unicode string>" not in str(error.value)


def test_a_file_parsed_ahead_is_used_only_while_its_text_is_unchanged(tmp_path, monkeypatch):
    from nowcast import config as config_module

    monkeypatch.setattr(config_module, "_parsed", {})
    monkeypatch.setenv("RUN", "one")
    path = write(tmp_path, "run: $(NOWCAST.ENV.RUN)\nvalue: 1\nitems: [a]\n")
    assert config_module.parse_ahead(path)  # written a moment ago: its text is what counts
    parsed = config_module._parsed[path.read_text()]
    first, second = Config(), Config()
    first.load(path)
    second.load(path)
    first["items"].append("b")  # each load has its own values
    assert second["items"] == ["a"] and second["run"] == "one"
    assert parsed["items"] == ["a"]  # and the data parsed ahead is not theirs to change
    monkeypatch.setenv("RUN", "two")  # the environment is read at each load
    second.load(path)
    assert second["run"] == "two"
    # a change of the same size at once, within one tick of the file system's clock
    path.write_text(path.read_text().replace("value: 1", "value: 2"))
    second.load(path)
    assert second["value"] == 2
    # back to the text parsed ahead: loaded without parsing it
    monkeypatch.setattr(config_module, "_parse", lambda text, name: pytest.fail("parsed"))
    path.write_text(path.read_text().replace("value: 2", "value: 1"))
    second.load(path)
    assert second["value"] == 1
    assert not config_module.parse_ahead(tmp_path / "missing.yaml")


def test_every_unset_env_var_is_named_at_once_with_where_it_is_used(tmp_path, monkeypatch):
    for name in ("NOWCAST_UNSET_A", "NOWCAST_UNSET_B"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOWCAST_SET", "/data")
    path = write(
        tmp_path,
        "checklist file: $(NOWCAST.ENV.NOWCAST_UNSET_A)/c.yaml\n"
        "python: $(NOWCAST.ENV.NOWCAST_UNSET_B)/bin/python\n"
        "dirs: [$(NOWCAST.ENV.NOWCAST_SET), '$(NOWCAST.ENV.NOWCAST_UNSET_A)/x']\n",
    )
    with pytest.raises(KeyError) as error:
        Config().load(path)
    text = error.value.args[0]
    assert text == (
        f"environment variables NOWCAST_UNSET_A, NOWCAST_UNSET_B are not set; {path} uses "
        "NOWCAST_UNSET_A at 'checklist file', 'dirs: 1'; NOWCAST_UNSET_B at 'python'"
    )
