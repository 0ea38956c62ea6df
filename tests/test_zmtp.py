"""A worker's exchange spoken in ZMTP itself, against a real zmq ROUTER socket
(the broker's kind)."""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from conftest import free_port
from hypothesis import given, settings
from hypothesis import strategies as st

from nowcast import zmtp


class Router:
    """A zmq ROUTER socket on a thread: answers each request with ``answer(body)``
    (None: no answer), and keeps the frames it received."""

    def __init__(self, port: int, answer, bind_after: float = 0.0) -> None:
        self.port = port
        self.answer = answer
        self.bind_after = bind_after
        self.received: list[list[bytes]] = []
        self.bound = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Router:
        self.thread.start()
        if not self.bind_after:
            self.bound.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)

    def _run(self) -> None:
        self.stop.wait(self.bind_after)  # a broker that comes up later
        context = zmq.Context()
        socket = context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"tcp://127.0.0.1:{self.port}")
        self.bound.set()
        try:
            while not self.stop.is_set():
                if not socket.poll(20):
                    continue
                frames = socket.recv_multipart()
                self.received.append(frames)
                reply = self.answer(frames[-1])
                if reply is not None:
                    socket.send_multipart([frames[0], b"", reply])
        finally:
            socket.close()
            context.term()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", [10, 255, 256, 70_000])
def test_a_request_gets_its_reply_as_from_a_req_socket(size):
    body = ("é" * size).encode()[:size]
    with Router(free_port(), lambda got: b"reply to " + got) as router:
        assert zmtp.request("127.0.0.1", router.port, body, 5) == b"reply to " + body
    # the ROUTER saw a REQ peer's message: its identity, the empty delimiter, the body
    ((_, delimiter, received),) = router.received
    assert (delimiter, received) == (b"", body)


@pytest.mark.timeout(30)
def test_no_reply_is_none_once_the_time_is_up():
    with Router(free_port(), lambda got: None) as router:
        start = time.monotonic()
        assert zmtp.request("localhost", router.port, b"x", 0.3) is None
        assert 0.3 <= time.monotonic() - start < 2
        assert len(router.received) == 1


@pytest.mark.timeout(30)
def test_a_broker_that_comes_up_during_the_wait_gets_the_request():
    with Router(free_port(), lambda got: b"late", bind_after=0.3) as router:
        assert zmtp.request("127.0.0.1", router.port, b"x", 5) == b"late"
        assert router.bound.is_set()


@pytest.mark.timeout(30)
def test_no_broker_at_all_is_none_once_the_time_is_up():
    start = time.monotonic()
    assert zmtp.request("127.0.0.1", free_port(), b"x", 0.3) is None
    assert 0.3 <= time.monotonic() - start < 2


@pytest.mark.timeout(30)
def test_a_peer_that_does_not_speak_zmtp_is_no_reply():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def talk_nonsense() -> None:
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(64))
                time.sleep(0.5)

        thread = threading.Thread(target=talk_nonsense, daemon=True)
        thread.start()
        assert zmtp.request("127.0.0.1", server.getsockname()[1], b"x", 0.3) is None
        thread.join(5)


def test_spoken_for_ip_addresses_and_localhost_without_keys():
    assert zmtp.usable("127.0.0.1", curve=False)
    assert zmtp.usable("localhost", curve=False)
    assert zmtp.usable("10.1.2.3", curve=False)
    assert zmtp.usable("::1", curve=False)
    assert zmtp.usable("[::1]", curve=False)
    assert not zmtp.usable("127.0.0.1", curve=True)  # CurveZMQ: zmq's
    assert not zmtp.usable("broker.example.org", curve=False)  # a name: zmq's resolver
    assert not zmtp.usable("eth0", curve=False)


def test_a_frame_announcing_more_than_a_reply_can_be_is_a_lost_connection():
    """A peer's size field is not trusted: a long frame of 2**63 bytes is refused
    at once, not buffered (nor made a MemoryError that would end the worker)."""
    import socket
    import struct

    left, right = socket.socketpair()
    with left, right:
        right.sendall(bytes([zmtp.LONG]) + struct.pack(">Q", 2**63))
        reader = zmtp._Reader(left, time.monotonic() + 5)
        with pytest.raises(zmtp._Lost, match="bytes"):
            reader.frame()
        right.sendall(bytes([zmtp.LONG]) + struct.pack(">Q", zmtp.MAX_FRAME) + b"x")
        right.close()
        with pytest.raises(zmtp._Lost, match="closed"):  # as long as it allows, no more
            reader.frame()


@pytest.mark.timeout(60)
@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_any_bytes_from_the_peer_are_a_frame_or_a_lost_connection(garbage):
    import socket

    left, right = socket.socketpair()
    with left, right:
        right.sendall(garbage)
        right.close()
        reader = zmtp._Reader(left, time.monotonic() + 5)
        try:
            while True:
                flags, data = reader.frame()
                assert isinstance(data, bytes) and 0 <= flags <= 255
        except zmtp._Lost:
            pass


def _no_new_connection(*args, **kwargs):
    raise AssertionError("a new connection was made")


@pytest.mark.timeout(30)
def test_a_connection_opened_ahead_carries_the_request(monkeypatch):
    with Router(free_port(), lambda body: b"re: " + body) as router:
        opened = zmtp.Opened.open("127.0.0.1", router.port)
        assert opened is not None
        monkeypatch.setattr(zmtp, "_connect", _no_new_connection)
        assert zmtp.request("127.0.0.1", router.port, b"hello", 5, opened) == b"re: hello"


@pytest.mark.timeout(30)
def test_a_connection_opened_ahead_and_closed_by_the_broker_is_replaced_at_once():
    port = free_port()
    with Router(port, lambda body: b"first"):
        opened = zmtp.Opened.open("127.0.0.1", port)
        time.sleep(0.2)  # its greeting answered, then the broker goes (a restart)
    with Router(port, lambda body: b"second"):
        start = time.monotonic()
        assert zmtp.request("127.0.0.1", port, b"hello", 10, opened) == b"second"
        assert time.monotonic() - start < 5  # not the whole wait for a lost reply


@pytest.mark.timeout(30)
def test_a_connection_opened_too_long_ago_is_not_used(monkeypatch):
    connects = []
    connect = zmtp._connect
    monkeypatch.setattr(zmtp, "_connect", lambda *a, **k: connects.append(a) or connect(*a, **k))
    with Router(free_port(), lambda body: b"ok") as router:
        opened = zmtp.Opened.open("127.0.0.1", router.port)
        monkeypatch.setattr(zmtp, "OPENED_FOR", 0.0)
        assert zmtp.request("127.0.0.1", router.port, b"hello", 5, opened) == b"ok"
    assert len(connects) == 2  # the one opened ahead, then a fresh one
    assert opened.connection.fileno() == -1  # closed, unused
