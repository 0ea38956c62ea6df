"""CurveZMQ keys and the closed door: real sockets, real processes."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys

import pytest
import yaml
import zmq
import zmq.auth
from conftest import listening, wait_for


def make_keys(directory, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "nowcast.keys", str(directory)], check=True, capture_output=True
    )
    for name in extra:
        subprocess.run(
            [sys.executable, "-m", "nowcast.keys", str(directory), "--client", name],
            check=True,
            capture_output=True,
        )


def send(system, keys_dir, secret: str | None, payload: dict) -> bool:
    """Send a success message for worker `a`; return whether any reply came."""
    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if secret is not None:
        sock.curve_serverkey = zmq.auth.load_certificate(str(keys_dir / "broker.key"))[0]
        sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(secret)
    # a send waits for a connection; one the broker refuses may never come
    sock.setsockopt(zmq.SNDTIMEO, 1500)
    sock.connect(f"tcp://127.0.0.1:{system.ports['workers']}")
    try:
        sock.send_string(json.dumps({"source": "a", "type": "success", "payload": payload}))
    except zmq.Again:
        sock.close()
        return False
    answered = bool(sock.poll(1500))
    sock.close()
    return answered


@pytest.fixture
def keyed(system, tmp_path):
    keys = tmp_path / "keys"
    make_keys(keys, "otherhost")
    system.zmq_extra["curve keys"] = str(keys)
    system.worker_module("a", "return {'a': 1}")
    system.worker_module("b", "return {'b': 1}")
    system.after(
        "def after_a(msg, config, checklist):\n    return [NextWorker('b')]\n"
        "def after_b(msg, config, checklist):\n    return []\n"
    )
    system.keys = keys
    return system


def test_keys_are_made_with_private_secrets(tmp_path):
    make_keys(tmp_path / "k", "hpc")
    for name in ("broker", "client", "hpc"):
        mode = stat.S_IMODE((tmp_path / "k" / f"{name}.key_secret").stat().st_mode)
        assert mode == 0o600
    assert sorted(p.name for p in (tmp_path / "k" / "authorized").iterdir()) == [
        "client.key",
        "hpc.key",
    ]


@pytest.mark.timeout(60)
def test_with_keys_a_chain_runs(keyed):
    keyed.start()
    assert keyed.run_worker("a").returncode == 0
    wait_for(lambda: "b" in keyed.checklist(), what="b to report")
    assert "CURVE on" in keyed.log()


@pytest.mark.timeout(60)
def test_plain_and_unknown_clients_get_nothing_through(keyed, tmp_path):
    keyed.start()
    assert keyed.run_worker("a").returncode == 0
    wait_for(lambda: "b" in keyed.checklist(), what="chain")
    before = keyed.checklist_file.read_text()
    make_keys(tmp_path / "rogue")
    assert not send(keyed, keyed.keys, None, {"plain": 1})
    assert not send(keyed, keyed.keys, str(tmp_path / "rogue" / "client.key_secret"), {"rogue": 1})
    assert keyed.checklist_file.read_text() == before
    wait_for(lambda: "did not present an authorized key" in keyed.log(), what="refusal log")
    assert keyed.log().count("did not present an authorized key") == 1  # rate-limited


@pytest.mark.timeout(60)
def test_removing_a_key_and_sighup_shuts_that_client_out(keyed):
    keyed.start()
    otherhost = str(keyed.keys / "otherhost.key_secret")
    assert send(keyed, keyed.keys, otherhost, {"first": 1})
    (keyed.keys / "authorized" / "otherhost.key").unlink()
    keyed.broker.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in keyed.log(), what="reload")
    assert not send(keyed, keyed.keys, otherhost, {"second": 1})
    assert keyed.checklist()["a"] == {"first": 1}
    assert keyed.run_worker("a").returncode == 0  # the host's own key still works


@pytest.mark.timeout(60)
def test_without_keys_the_broker_listens_on_loopback_only(system):
    system.start(manager=False)
    assert set(listening(system.broker.pid)) == {
        ("127.0.0.1", system.ports["workers"]),
        ("127.0.0.1", system.ports["manager"]),
    }


@pytest.mark.timeout(60)
def test_public_bind_without_keys_is_refused_unless_insecure(system):
    system.zmq_extra["bind"] = "0.0.0.0"
    system.write()
    broker = system.spawn("nowcast.message_broker")
    assert broker.wait(10) == 2
    output = (system.dir / "nowcast.message_broker.out").read_text()
    assert "python -m nowcast.keys" in output
    assert "key 'zmq: bind' is '0.0.0.0', which is not loopback" in output  # as written
    system.zmq_extra["insecure"] = True
    system.write()
    broker = system.spawn("nowcast.message_broker")
    wait_for(lambda: "manager socket bound" in system.log(), what="insecure bind")
    assert set(listening(broker.pid)) == {
        ("0.0.0.0", system.ports["workers"]),
        ("0.0.0.0", system.ports["manager"]),
    }


@pytest.mark.timeout(60)
def test_messages_over_the_size_limit_are_answered_and_far_over_dropped(system):
    system.zmq_extra["max message size"] = 100_000
    system.worker_module("a")
    system.after("def after_a(msg, config, checklist):\n    return []\n")
    system.start()
    big = json.dumps({"source": "a", "type": "success", "payload": "x" * 200_000})
    reply = system.request(big)
    assert reply["type"] == "invalid message"
    assert "over the limit of 100000 bytes (zmq: max message size)" in reply["payload"]
    huge = json.dumps({"source": "a", "type": "success", "payload": "x" * 500_000})
    assert system.request(huge, timeout=2) is None  # over 4 times the limit: dropped
    assert system.log().count("invalid message (") == 1  # the huge one never reached it
    assert system.run_worker("a").returncode == 0
    assert system.checklist()["a"] == {"done": True}


@pytest.mark.timeout(60)
def test_a_worker_refuses_at_once_to_send_a_message_over_the_limit(system):
    system.zmq_extra["max message size"] = 100_000
    system.zmq_extra["give up after"] = 30
    system.worker_module("big", "return {'data': 'x' * 150_000}")
    system.after("def after_big(msg, config, checklist):\n    return []\n")
    system.start()
    result = system.run_worker("big")
    assert result.returncode == 6, result.stderr
    assert re.search(r"message of 1500\d\d bytes is over the limit of 100000 bytes", system.log())
    assert "re-sending" not in system.log() and "big" not in system.checklist()


@pytest.mark.timeout(60)
def test_yaml_messages_are_bounded_and_deep_ones_refused(system):
    system.worker_module("a")
    system.after("def after_a(msg, config, checklist):\n    return []\n")
    system.start()
    large = "source: a\ntype: success\npayload:\n" + "  - xxxxxxxxxxxxxxx\n" * 20_000
    reply = yaml.safe_load(_raw_request(system, large))
    assert reply["type"] == "invalid message" and "YAML message is at most" in reply["payload"]
    deep = "source: a\ntype: success\npayload: " + "[" * 5000 + "]" * 5000 + "\n"
    reply = yaml.safe_load(_raw_request(system, deep))
    assert reply["type"] == "invalid message"
    fine = "source: a\ntype: success\npayload: {n: 1}\n"
    assert yaml.safe_load(_raw_request(system, fine))["type"] == "ack"
    assert system.checklist()["a"] == {"n": 1}


def test_yaml_is_read_with_libyaml_where_it_is_available():
    import yaml as pyyaml

    from nowcast.message import yaml_loader

    assert yaml_loader() is getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


def _raw_request(system, text: str) -> str:
    import zmq

    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{system.ports['workers']}")
    try:
        sock.send_string(text)
        assert sock.poll(10_000), "no reply"
        return sock.recv_string()
    finally:
        sock.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bind", ["localhost", "127.0.0.1"])
def test_a_loopback_bind_by_name_or_address_needs_no_keys(system, bind):
    system.zmq_extra["bind"] = bind
    system.start(manager=False)
    assert set(listening(system.broker.pid)) == {
        ("127.0.0.1", system.ports["workers"]),
        ("127.0.0.1", system.ports["manager"]),
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bind", ["0.0.0.0", "*", "nowcast.example", "192.0.2.7"])
def test_a_bind_beyond_loopback_without_keys_is_refused(system, bind):
    system.zmq_extra["bind"] = bind
    system.write()
    broker = system.spawn("nowcast.message_broker")
    assert broker.wait(10) == 2
    output = (system.dir / "nowcast.message_broker.out").read_text()
    assert "'zmq: bind'" in output
    assert "Traceback" not in output


def test_key_files_are_checked_for_the_role_that_needs_them(tmp_path):
    from nowcast.config import Config
    from nowcast.errors import ConfigError
    from nowcast.sockets import check_keys

    make_keys(tmp_path / "all")
    # a worker's host holds the broker's public key and its own key pair only
    client_only = tmp_path / "client-only"
    client_only.mkdir()
    for name in ("broker.key", "client.key_secret"):
        (client_only / name).write_bytes((tmp_path / "all" / name).read_bytes())
    path = tmp_path / "nowcast.yaml"
    path.write_text(f"zmq:\n  curve keys: {client_only}\n")
    config = Config()
    config.load(path)
    check_keys(config, "client")
    with pytest.raises(ConfigError, match="broker.key_secret"):
        check_keys(config, "server")
