"""CurveZMQ keys and the closed door: real sockets, real processes."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys

import pytest
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
    sock.connect(f"tcp://127.0.0.1:{system.ports['workers']}")
    sock.send_string(json.dumps({"source": "a", "type": "success", "payload": payload}))
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
def test_messages_over_the_size_limit_are_dropped_before_parsing(system):
    system.zmq_extra["max message size"] = 100_000
    system.worker_module("a")
    system.after("def after_a(msg, config, checklist):\n    return []\n")
    system.start()
    big = json.dumps({"source": "a", "type": "success", "payload": "x" * 200_000})
    assert system.request(big, timeout=2) is None
    assert "payload" not in system.log() and "invalid message" not in system.log()
    assert system.run_worker("a").returncode == 0
    assert system.checklist()["a"] == {"done": True}
