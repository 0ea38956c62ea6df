"""The message broker with real processes: relaying both ways, dropping what no
manager can take, stopping, re-binding on SIGHUP, and garbage on its sockets; and
in this process, re-binding and the relay loop one step at a time."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time

import pytest
import zmq
from conftest import free_port, listening, wait_for

from nowcast import defaults
from nowcast.config import Config
from nowcast.message_broker import ROLES, MessageBroker

NO_MANAGER = "Is the manager running?"


def message(msg_id: str, payload: dict) -> str:
    return json.dumps({"source": "w", "type": "success", "payload": payload, "id": msg_id})


def req_socket(port: int) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def one_worker(system):
    """A system with one registered worker, ``w``, that launches nothing after it."""
    system.worker_module("w")
    system.after("def after_w(msg, config, checklist):\n    return []\n")
    return system


@pytest.mark.timeout(60)
def test_messages_flow_from_workers_to_the_manager_and_back(one_worker):
    one_worker.start()
    assert one_worker.run_worker("w").returncode == 0
    assert one_worker.checklist()["w"] == {"done": True}
    replies: dict[int, object] = {}

    def client(first: int) -> None:
        for i in range(first, first + 20):
            replies[i] = one_worker.request(message(f"m{i}", {f"k{i}": i}))

    threads = [threading.Thread(target=client, args=(20 * n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 200 and all(reply is not None for reply in replies.values())
    assert len(one_worker.checklist()["w"]) == 201
    assert NO_MANAGER not in one_worker.log()


@pytest.mark.timeout(60)
def test_a_message_before_any_manager_is_dropped_not_held(one_worker):
    one_worker.start(manager=False)
    early = req_socket(one_worker.ports["workers"])
    try:
        early.send_string(message("early", {"early": 1}))
        wait_for(lambda: NO_MANAGER in one_worker.log(), what="the drop's log line")
        one_worker.start_manager()
        # had the broker held the early message, the manager would have applied it
        # before this one, which comes through the same queue after it
        assert one_worker.request(message("later", {"later": 1}))["type"] == "ack"
        assert one_worker.checklist()["w"] == {"later": 1}
        assert "unexpected error" not in one_worker.log()  # relaying in Python raised nothing
    finally:
        early.close()
    # the worker re-sends with the same id, and now gets its reply
    assert one_worker.request(message("early", {"early": 1}))["type"] == "ack"
    assert one_worker.checklist()["w"] == {"later": 1, "early": 1}


@pytest.mark.timeout(60)
def test_a_message_while_the_manager_is_down_is_dropped_not_held(one_worker):
    one_worker.start()
    assert one_worker.request(message("before", {"before": 1}))["type"] == "ack"
    one_worker.kill_manager()
    early = req_socket(one_worker.ports["workers"])
    try:
        early.send_string(message("while down", {"while down": 1}))
        wait_for(lambda: NO_MANAGER in one_worker.log(), what="the drop's log line")
        one_worker.start_manager()
        assert one_worker.request(message("after", {"after": 1}))["type"] == "ack"
        assert one_worker.checklist()["w"] == {"before": 1, "after": 1}
    finally:
        early.close()


@pytest.mark.timeout(60)
def test_a_worker_started_before_the_manager_gets_its_reply_by_re_sending(one_worker):
    one_worker.start(manager=False)
    worker = one_worker.launch_worker("w")
    wait_for(lambda: NO_MANAGER in one_worker.log(), what="the drop's log line")
    one_worker.start_manager()
    assert worker.wait(30) == 0
    assert one_worker.checklist()["w"] == {"done": True}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("manager", [True, False], ids=["relaying", "no manager"])
def test_sigterm_stops_the_broker_within_2_seconds(one_worker, manager):
    one_worker.start(manager=manager)
    if manager:
        assert one_worker.request(message("m", {"m": 1}))["type"] == "ack"
    one_worker.broker.send_signal(signal.SIGTERM)
    assert one_worker.broker.wait(2) == 0
    assert "SIGTERM received; shutting down" in one_worker.log()


@pytest.mark.timeout(60)
def test_sighup_with_a_new_port_re_binds(one_worker):
    one_worker.start()
    old = one_worker.ports["workers"]
    one_worker.ports["workers"] = new = free_port()
    one_worker.write()
    one_worker.broker.send_signal(signal.SIGHUP)
    manager_port = ("127.0.0.1", one_worker.ports["manager"])
    wait_for(
        lambda: set(listening(one_worker.broker.pid)) == {("127.0.0.1", new), manager_port},
        what="the new bind, and the old one closed",
    )
    assert one_worker.request(message("m", {"m": 1}))["type"] == "ack"
    wait_for(lambda: port_is_free(old), what="the old port to be released")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("role", ["workers", "manager"])
def test_sighup_with_a_port_taken_keeps_the_old_ports(one_worker, role):
    one_worker.start()
    old = dict(one_worker.ports)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # the other socket's new port is free, so that bind succeeds and is undone
        one_worker.ports["workers"] = free_port()
        one_worker.ports[role] = taken.getsockname()[1]
        moved = one_worker.ports["workers"]
        one_worker.write()
        one_worker.broker.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the old ones" in one_worker.log(), what="the refusal")
    one_worker.ports = old
    assert one_worker.request(message("m", {"m": 1}))["type"] == "ack"
    if role == "manager":
        wait_for(lambda: port_is_free(moved), what="the undone bind to be released")
    assert one_worker.broker.poll() is None


@pytest.mark.timeout(60)
def test_sighup_turning_keys_on_re_binds_the_same_ports(one_worker, tmp_path):
    from test_security import make_keys, send

    one_worker.start()
    before = listening(one_worker.broker.pid)
    keys = tmp_path / "keys"
    make_keys(keys)
    one_worker.zmq_extra["curve keys"] = str(keys)
    one_worker.write()
    one_worker.broker.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in one_worker.log(), what="the reload")
    assert "keeping the old ones" not in one_worker.log()
    after = listening(one_worker.broker.pid)
    ports = {("127.0.0.1", one_worker.ports[role]) for role in ("workers", "manager")}
    assert set(before) == set(after) == ports  # the same addresses...
    assert not set(before.values()) & set(after.values())  # ...on new sockets
    one_worker.manager.terminate()
    assert one_worker.manager.wait(5) == 0
    one_worker.start_manager()  # now with the keys
    assert not send(one_worker, keys, None, {"plain": 1})
    make_keys(tmp_path / "rogue")  # keys, but not authorized ones: the keys are checked
    assert not send(one_worker, keys, str(tmp_path / "rogue" / "client.key_secret"), {"r": 1})
    assert one_worker.run_worker("w").returncode == 0
    assert one_worker.checklist()["w"] == {"done": True}


@pytest.mark.timeout(60)
def test_garbage_frames_do_not_stop_the_broker(one_worker):
    one_worker.start()
    context = zmq.Context.instance()
    for port in ("workers", "manager"):
        rogue = context.socket(zmq.DEALER)
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.connect(f"tcp://127.0.0.1:{one_worker.ports[port]}")
        for i in range(100):
            rogue.send_multipart([bytes([i % 256]) * (i % 7) for _ in range(1 + i % 40)])
        rogue.close()
    with socket.create_connection(("127.0.0.1", one_worker.ports["workers"])) as raw:
        raw.sendall(b"\xff\x00 not a ZeroMQ greeting " * 100)
    # a message the manager's side took while the rogue was connected there is lost:
    # re-send, as workers do
    assert wait_for(
        lambda: one_worker.request(message("after", {"after": 1}), timeout=1),
        what="a reply after the garbage",
    )
    assert one_worker.checklist()["w"] == {"after": 1}
    assert one_worker.broker.poll() is None


@pytest.mark.timeout(60)
def test_a_manager_that_stops_reading_makes_the_broker_drop_not_wait(one_worker):
    one_worker.start()
    one_worker.manager.send_signal(signal.SIGSTOP)
    try:
        flood = zmq.Context.instance().socket(zmq.DEALER)
        flood.setsockopt(zmq.LINGER, 0)
        flood.connect(f"tcp://127.0.0.1:{one_worker.ports['workers']}")
        blob = "x" * 10_000
        try:
            # more than the queues to the stopped manager hold, so sends to it fail
            for i in range(4000):
                flood.send_multipart([b"", message(f"f{i}", {"blob": blob}).encode()])
            wait_for(lambda: NO_MANAGER in one_worker.log(), what="the drop's log line")
        finally:
            flood.close()
    finally:
        one_worker.manager.send_signal(signal.SIGCONT)
    assert wait_for(
        lambda: one_worker.request(message("after", {"after": 1}), timeout=2),
        timeout=30,
        what="a reply once the manager reads again",
    )
    one_worker.broker.send_signal(signal.SIGTERM)
    assert one_worker.broker.wait(2) == 0
    # a send the relay thread could not make is a drop, not an error
    output = one_worker.log() + (one_worker.dir / "nowcast.message_broker.out").read_text()
    assert "unexpected error" not in output and "Traceback" not in output


@pytest.mark.timeout(60)
def test_a_re_bind_while_no_manager_is_there_then_relays_on_the_new_port(one_worker):
    one_worker.start(manager=False)  # the broker relays in Python: no manager to take messages
    one_worker.ports["workers"] = new = free_port()
    one_worker.write()
    one_worker.broker.send_signal(signal.SIGHUP)
    wait_for(lambda: ("127.0.0.1", new) in listening(one_worker.broker.pid), what="the new bind")
    early = req_socket(new)
    try:
        early.send_string(message("early", {"early": 1}))
        wait_for(lambda: NO_MANAGER in one_worker.log(), what="the drop's log line")
    finally:
        early.close()
    one_worker.start_manager()
    assert one_worker.request(message("later", {"later": 1}))["type"] == "ack"
    assert one_worker.broker.poll() is None


@pytest.mark.timeout(60)
def test_importing_the_process_modules_starts_nothing():
    import subprocess
    import sys

    modules = "nowcast.message_broker, nowcast.manager, nemo_nowcast.message_broker"
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}"], capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# The broker in this process: re-binding and the relay loop, turn by turn


def broker_config(workers: int, manager: int, **zmq_settings) -> Config:
    config = Config()
    config.file = "nowcast.yaml"
    config["zmq"] = {
        "host": "127.0.0.1",
        "ports": {"workers": workers, "manager": manager},
        **zmq_settings,
    }
    return config


@pytest.fixture
def broker():
    """Make a set-up ``MessageBroker`` for a config; shut down after the test."""
    made: list[MessageBroker] = []

    def make(config: Config) -> MessageBroker:
        made.append(MessageBroker())
        made[-1].config = config
        made[-1].setup()
        return made[-1]

    yield make
    for one in made:
        one.shutdown()


def bound(broker: MessageBroker) -> dict[str, str]:
    """The address each of the broker's sockets is bound to."""
    return {role: s.getsockopt_string(zmq.LAST_ENDPOINT) for role, s in broker._sockets.items()}


def reload(broker: MessageBroker, new: Config) -> None:
    """As a SIGHUP does once ``new`` is read and valid."""
    old, broker.config = broker.config, new
    broker.apply_config(old, new)


def at(*ports: int) -> dict[str, str]:
    return {role: f"tcp://127.0.0.1:{port}" for role, port in zip(ROLES, ports, strict=True)}


@pytest.mark.timeout(30)
def test_re_binds_to_a_port_before_or_after_the_old_and_keeps_the_new_config(broker, caplog):
    low, high = sorted({free_port() for _ in range(2)})
    manager = free_port()
    one = broker(broker_config(low, manager))
    for port in (high, low):  # each way of ordering the two addresses
        new = broker_config(port, manager)
        wait_for(lambda p=port: port_is_free(p), what="the old socket to be closed")
        reload(one, new)
        assert bound(one) == at(port, manager)
        assert one.config is new  # what the next reload compares with
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.timeout(30)
def test_a_failed_re_bind_keeps_the_old_sockets_and_config(broker):
    old = broker_config(free_port(), free_port())
    one = broker(old)
    before = bound(one)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        reload(one, broker_config(free_port(), taken.getsockname()[1]))
    assert bound(one) == before
    assert one.config is old  # so the same reload, once the port is free, re-binds


@pytest.mark.timeout(30)
def test_a_failed_re_bind_turning_keys_on_re_opens_the_socket_it_closed(broker, tmp_path):
    from test_security import make_keys

    keys = tmp_path / "keys"
    make_keys(keys)
    ports = free_port(), free_port()
    one = broker(broker_config(*ports))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # the workers' socket is closed to free its address for the keys; the
        # manager's new port is taken, so the workers' must be bound again
        reload(one, broker_config(ports[0], taken.getsockname()[1], **{"curve keys": str(keys)}))
    assert bound(one) == at(*ports)
    one.loop()  # relays on (in Python here: no manager)


@pytest.mark.timeout(30)
def test_a_bind_waits_for_its_address_only_when_asked_and_for_a_while(broker, monkeypatch):
    import nowcast.message_broker as message_broker

    monkeypatch.setattr(message_broker.defaults, "REBIND_WAIT", 1.0)
    one = broker(broker_config(free_port(), free_port()))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]

    def open_taken(retry: bool, **zmq_settings) -> float:
        start = time.monotonic()
        with pytest.raises(zmq.ZMQError):
            one._open(broker_config(port, port, **zmq_settings), "workers", retry=retry)
        return time.monotonic() - start

    try:
        assert open_taken(retry=False) < 0.5  # a bind at start or to a new address
        assert 1.0 <= open_taken(retry=True) < 5  # an address that is not released
        # an address that cannot be bound here is not waited for
        assert open_taken(retry=True, bind="192.0.2.7", insecure=True) < 0.5
        threading.Timer(0.2, taken.close).start()  # released a little later
        one._open(broker_config(port, port), "workers", retry=True).close(linger=0)
    finally:
        taken.close()


@pytest.mark.timeout(30)
def test_the_relay_loop_waits_between_checks_and_checks_without_error(broker):
    one = broker(broker_config(free_port(), free_port()))
    manager = zmq.Context.instance().socket(zmq.DEALER)
    manager.setsockopt(zmq.LINGER, 0)
    manager.connect(bound(one)["manager"])
    try:
        wait_for(lambda: one._sockets["manager"].get(zmq.EVENTS) & zmq.POLLOUT, what="the manager")
        one.loop()
        assert one._relay is not None  # the relay thread runs
        start = time.monotonic()
        one.loop()  # nothing happens: waits for the poll's time (200 ms)
        assert time.monotonic() - start >= 0.1
        deadline = time.monotonic() + 2 * defaults.RELAY_CHECK + 1
        while time.monotonic() < deadline:  # past a check or two, each stopping the relay
            one.loop()
        assert one._relay is not None
        # a turn that comes late, after the time of the check (a loaded machine)
        one._next_check = time.monotonic() - 0.05
        start = time.monotonic()
        one.loop()
        assert time.monotonic() - start < 1 and one._relay is None  # checked at once
    finally:
        manager.close()


@pytest.mark.timeout(30)
def test_shutdown_does_not_wait_for_what_a_stopped_manager_has_not_taken():
    one = MessageBroker()
    one.config = broker_config(free_port(), free_port())
    one.setup()
    manager = zmq.Context.instance().socket(zmq.ROUTER)  # connected, never reads
    manager.setsockopt(zmq.LINGER, 0)
    manager.setsockopt(zmq.RCVHWM, 1)
    manager.setsockopt(zmq.RCVBUF, 4096)
    manager.connect(bound(one)["manager"])
    try:
        to_manager = one._sockets["manager"]
        wait_for(lambda: to_manager.get(zmq.EVENTS) & zmq.POLLOUT, what="the manager")
        with pytest.raises(zmq.Again):  # until its queue is full
            for _ in range(100_000):
                to_manager.send_multipart([b"w", b"", b"x" * 10_000], zmq.NOBLOCK)
        start = time.monotonic()
        one.shutdown()
        assert time.monotonic() - start < 2
    finally:
        manager.close()


@pytest.mark.timeout(30)
def test_with_keys_a_re_bind_and_shutdown_close_the_refusal_monitors(tmp_path, caplog):
    from test_security import make_keys

    make_keys(tmp_path / "keys")
    keyed = {"curve keys": str(tmp_path / "keys")}
    one = MessageBroker()
    one.config = broker_config(free_port(), free_port(), **keyed)
    one.setup()
    monitors = list(one._monitors)
    assert len(monitors) == len(ROLES)
    with caplog.at_level(logging.WARNING, logger=one.name):
        for _ in range(3):
            one.loop()  # no manager: relays in Python, polling the monitors too
    assert "refused" not in caplog.text  # nothing was
    reload(one, broker_config(free_port(), free_port(), **keyed))
    assert all(monitor.closed for monitor in monitors)
    start = time.monotonic()
    one.shutdown()  # the context's term() waits for every socket still open
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    ("what", "every", "last"),
    [("dropped", 5, "_last_drop_log"), ("refused", 10, "_last_refusal_log")],
)
def test_drops_and_refusals_are_logged_at_most_every_5_and_10_s(broker, caplog, what, every, last):
    import struct

    one = broker(broker_config(free_port(), free_port()))
    context = zmq.Context.instance()
    monitor, events = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    monitor.bind(f"inproc://refusals-{id(monitor)}")
    events.connect(f"inproc://refusals-{id(monitor)}")

    def log() -> None:
        if what == "dropped":
            one._log_drop("to the manager", zmq.Again())
            return
        # a refused connection, as libzmq's monitor reports it
        events.send_multipart(
            [struct.pack("=hi", zmq.EVENT_HANDSHAKE_FAILED_AUTH, 0), b"tcp://127.0.0.1:1"]
        )
        wait_for(lambda: monitor.poll(0), what="the event")
        one._log_refusal(monitor)

    def lines() -> list[str]:
        found = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        caplog.clear()
        return found

    try:
        with caplog.at_level(logging.WARNING, logger=one.name):
            log()
            log()  # at once: counted, not logged
            assert [line.split(" (")[0] for line in lines()] == (
                ["dropped 1 message(s) that could not be relayed to the manager"]
                if what == "dropped"
                else [
                    "refused 1 connection(s) on tcp://127.0.0.1:1 that did not present an authorized key"
                ]
            )
            setattr(one, last, time.monotonic() - every + 0.5)
            log()
            assert lines() == []
            setattr(one, last, time.monotonic() - every - 0.5)
            log()
            assert [line.split(" ")[:2] for line in lines()] == [[what, "3"]]
    finally:
        monitor.close(linger=0)
        events.close(linger=0)
