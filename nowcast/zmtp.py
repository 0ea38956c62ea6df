"""A worker's one request and its reply, spoken in ZMTP 3.0 (ZeroMQ's wire
protocol, NULL security) over a plain TCP connection, as a zmq REQ socket would.

A worker sends a message and waits for the reply. A zmq context for that starts
two threads (I/O and reaper) and costs a worker forked by the fork server about
1 ms of CPU; a TCP connection spoken to in ZMTP costs about a third of that. The
broker's ROUTER socket sees an ordinary REQ peer: the same greeting, the same
READY command with ``Socket-Type: REQ``, an empty delimiter frame, then the
message. Used for a broker at a literal IP address or ``localhost`` without
CurveZMQ keys; otherwise the worker uses zmq (``usable``).

What a REQ socket does that matters here is kept: the connection is retried
every ``RECONNECT`` seconds while it is refused (the broker not yet up), and a
reply that does not come (a connection lost included) is waited for until the
timeout, after which the caller re-sends on a fresh connection.

A worker opens its connection before its job (``Opened``), so the broker's
greeting has arrived by the time the message goes; a connection found closed
before anything was sent on it, or opened more than ``OPENED_FOR`` seconds
before, is replaced at once.
"""

from __future__ import annotations

import socket
import struct
import time

# ZMTP 3.0 greeting: signature, version 3.0, mechanism NULL, as-server 0, filler
GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + bytes(32)
_READY = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 3) + b"REQ"
# flags of a frame: more frames follow, 8-byte size, command
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
_HELLO = GREETING + bytes([COMMAND, len(_READY)]) + _READY  # what this side says first
# Seconds a connection opened ahead is used for; an older one is closed unused (a
# long job's connection may have been cut by the network, or the broker restarted)
OPENED_FOR = 10.0
RECONNECT = 0.1  # seconds between connection tries, zmq's default reconnect interval
# The largest frame read: a reply is a short message; a peer announcing more is
# not the broker (or not well), and is treated as a lost connection.
MAX_FRAME = 16 * 1024 * 1024


class _Lost(Exception):
    """The connection closed, or the peer spoke something other than ZMTP 3."""


class _Unsent(Exception):
    """The connection failed before the message was sent."""


def usable(host: str, curve: bool) -> bool:
    """Whether a broker at ``host`` can be spoken to here: no CurveZMQ keys, and a
    literal IP address or ``localhost`` (a name goes through zmq's resolver)."""
    return not curve and _family(host) is not None


class Opened:
    """A connection opened ahead of the request that will use it (the worker opens
    one before its job), with this side's greeting sent: the peer's answer
    arrives meanwhile, so the request does not wait for it."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.opened = time.monotonic()

    @classmethod
    def open(cls, host: str, port: int, timeout: float = 1.0) -> Opened | None:
        """Connect and greet; None if that cannot be done at once (the request
        then connects as it would have)."""
        connection = _connect(host, port, time.monotonic() + timeout, retry=False)
        if connection is None:
            return None
        try:
            connection.settimeout(timeout)
            connection.sendall(_HELLO)
        except OSError:
            connection.close()
            return None
        return cls(connection)

    def close(self) -> None:
        self.connection.close()


def request(
    host: str, port: int, body: bytes, timeout: float, opened: Opened | None = None
) -> bytes | None:
    """Send ``body`` as a REQ socket's message to the peer at ``host:port``; return
    the reply's body, or None when none came within ``timeout`` seconds. An
    ``opened`` connection is used if it is fresh and greeted back; otherwise (or
    when it has gone meanwhile) a new one is made, nothing having been sent."""
    deadline = time.monotonic() + timeout
    if opened is not None:
        if time.monotonic() - opened.opened < OPENED_FOR:
            try:
                return _exchange(opened.connection, body, deadline, greeted=True)
            except _Unsent:
                pass
        opened.close()
    connection = _connect(host, port, deadline)
    if connection is None:
        return None
    try:
        return _exchange(connection, body, deadline)
    except _Unsent:
        time.sleep(_left(deadline))  # as a REQ socket: what is lost is waited for
        return None


def _exchange(
    connection: socket.socket, body: bytes, deadline: float, greeted: bool = False
) -> bytes | None:
    """Greet (unless ``greeted``), send ``body``, return the reply's body. Raises
    ``_Unsent`` when the connection failed before ``body`` was sent."""
    try:
        try:
            connection.settimeout(_left(deadline))
            if not greeted:
                connection.sendall(_HELLO)
            reader = _Reader(connection, deadline)
            greeting = reader.take(64)
            if greeting[0] != 0xFF or greeting[9] != 0x7F or greeting[10] < 3:
                raise _Lost("not a ZMTP 3 peer")
            flags, ready = reader.frame()
            if not flags & COMMAND or not ready.startswith(b"\x05READY"):
                raise _Lost("no READY command")
            if greeted and _closed(connection):  # the peer's words were read long ago
                raise _Lost("connection closed")
        except (_Lost, OSError) as e:
            raise _Unsent() from e
        connection.settimeout(_left(deadline))
        connection.sendall(_frame(b"", MORE) + _frame(body, 0))
        frames = []
        while True:
            flags, data = reader.frame()
            if flags & COMMAND:
                continue  # a command of the protocol's own, nothing of the reply
            frames.append(data)
            if not flags & MORE:
                break
        if len(frames) < 2 or frames[0] != b"":
            raise _Lost("a reply without its delimiter")
        return frames[1]
    except (_Lost, OSError):
        # as a REQ socket: what is lost is waited for until the timeout
        time.sleep(_left(deadline))
        return None
    finally:
        connection.close()


def _closed(connection: socket.socket) -> bool:
    """Whether the peer has closed ``connection`` (it says nothing more until the
    message is sent, so anything to read is its end)."""
    timeout = connection.gettimeout()
    connection.setblocking(False)
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    finally:
        connection.settimeout(timeout)


def _family(host: str) -> int | None:
    if host == "localhost":  # as zmq resolves it (IPv4 unless told otherwise)
        return socket.AF_INET
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]") if family == socket.AF_INET6 else host)
        except OSError:
            continue
        return family
    return None


def _connect(host: str, port: int, deadline: float, retry: bool = True) -> socket.socket | None:
    family = _family(host)
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    while True:
        connection = socket.socket(family, socket.SOCK_STREAM)
        connection.settimeout(_left(deadline))
        try:
            connection.connect((address, port))
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection
        except OSError:
            connection.close()
            if _left(deadline) <= 0 or not retry:
                return None
        time.sleep(min(RECONNECT, _left(deadline)))


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _frame(body: bytes, flags: int) -> bytes:
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


class _Reader:
    """The bytes of a connection, read as they are needed, until ``deadline``."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.buffer = bytearray()

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            left = _left(self.deadline)
            if left <= 0:
                raise _Lost("no reply in time")
            self.connection.settimeout(left)
            data = self.connection.recv(max(4096, size - len(self.buffer)))
            if not data:
                raise _Lost("connection closed")
            self.buffer += data
        taken = bytes(self.buffer[:size])
        del self.buffer[:size]
        return taken

    def frame(self) -> tuple[int, bytes]:
        flags = self.take(1)[0]
        size = struct.unpack(">Q", self.take(8))[0] if flags & LONG else self.take(1)[0]
        if size > MAX_FRAME:
            raise _Lost(f"a frame of {size} bytes")
        return flags, self.take(size)
