"""Property: whatever messages come, and however often the manager is killed,
every acknowledged message's effect is on disk and every request gets one reply.

Random JSON and NEMO-style YAML messages (any structure, any Unicode, lone
surrogates included, any depth) go to a real broker and manager; the manager is
killed with SIGKILL at random points and started again; requests left without a
reply are re-sent (the same id), as workers do. At the end the manager is killed
and started once more, and the checklist file must hold the payload of every
message that got an ``ack``, and nothing of the others.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
import zmq
from conftest import System
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

SOURCES = 24  # one registered worker (and checklist key) per message

text = st.text(st.characters(exclude_categories=[]), max_size=12)  # surrogates too
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | text
    | st.sampled_from(["\ud800", "a\udfffb", "yes", "null", "1.0", "~", "- x", "a: b"])
)
trees = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
    max_leaves=16,
)


def _nest(depth: int, leaf):
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


deep = st.builds(_nest, st.integers(0, 400), scalars)

messages = st.lists(
    st.tuples(
        st.sampled_from(["json", "json ascii", "yaml"]),
        st.sampled_from(["success"] * 6 + ["failure", "unregistered type"]),
        trees | deep,
    ),
    min_size=8,
    max_size=SOURCES,
)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _unicode(value) -> bool:
    """Whether every string in ``value`` is valid Unicode (no lone surrogate)."""
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return all(_unicode(k) and _unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_unicode, value))
    return True


def _same(a, b) -> bool:
    """Equal as the checklist file gives them back (1 == 1.0; -0.0 == 0.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return a == b
    return a == b and type(a) in (type(b), int, float) and type(b) in (type(a), int, float)


def _body(n: int, form: str, msg_type: str, payload) -> bytes:
    source = f"m{n}"
    if form == "yaml":  # NEMO_Nowcast's form: no id
        text_ = yaml.safe_dump(
            {"source": source, "type": msg_type, "payload": payload}, allow_unicode=True
        )
    else:
        data = {"source": source, "type": msg_type, "payload": payload, "id": f"{source}:1:p:1"}
        text_ = json.dumps(data, ensure_ascii=form == "json ascii")
    return text_.encode("utf-8", "surrogatepass")


def _system(directory: Path) -> System:
    system = System(directory)
    system.zmq_extra.update({"reply timeout": 1, "give up after": 60})
    for n in range(SOURCES):
        system.register(f"m{n}")
        system.after(f"def after_m{n}(msg, config, checklist):\n    return []\n")
    return system


def _reply(frame: bytes) -> dict:
    """A reply: JSON, or YAML for a NEMO-style (YAML) message."""
    try:
        return json.loads(frame)
    except ValueError:
        return yaml.safe_load(frame)


class Client:
    """Requests as workers make them: one DEALER each, re-sent on a fresh one
    when no reply comes."""

    def __init__(self, system: System) -> None:
        self.address = f"tcp://127.0.0.1:{system.ports['workers']}"
        self.context = zmq.Context.instance()
        self.requests: list[tuple[int, zmq.Socket, list]] = []  # (message, socket, replies)

    def send(self, n: int, body: bytes) -> None:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.address)
        sock.send_multipart([b"", body])
        self.requests.append((n, sock, []))

    def collect(self, wait_ms: int = 0) -> None:
        poller = zmq.Poller()
        for _, sock, _ in self.requests:
            poller.register(sock, zmq.POLLIN)
        for sock, _ in poller.poll(wait_ms):
            for _, s, replies in self.requests:
                if s is sock:
                    while sock.poll(0):
                        replies.append(_reply(sock.recv_multipart()[-1]))

    def answered(self, n: int) -> list:
        return [r for m, _, replies in self.requests if m == n for r in replies]

    def close(self) -> None:
        for _, sock, _ in self.requests:
            sock.close()


@pytest.mark.timeout(900)
@settings(
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example runs processes
    suppress_health_check=list(HealthCheck),
)
@given(batch=messages, kills=st.lists(st.integers(0, SOURCES - 1), min_size=2, max_size=3))
def test_acknowledged_effects_survive_kill_9_and_every_request_gets_one_reply(batch, kills):
    with tempfile.TemporaryDirectory(prefix="nowcast-property-") as directory:
        system = _system(Path(directory))
        system.start()
        client = Client(system)
        try:
            bodies = [_body(n, *message) for n, message in enumerate(batch)]
            for n, body in enumerate(bodies):
                client.send(n, body)
                client.collect()
                if n in kills:
                    system.kill_manager()
                    system.start_manager()
            for _ in range(30):  # re-send what is unanswered, as workers do
                client.collect(2000)
                missing = [n for n in range(len(bodies)) if not client.answered(n)]
                if not missing:
                    break
                for n in missing:
                    client.send(n, bodies[n])
            client.collect(500)  # any reply sent twice would be here by now
            for n, _, replies in client.requests:
                assert len(replies) <= 1, f"request for message {n} got {replies}"
            replies = {n: client.answered(n) for n in range(len(bodies))}
            assert all(replies.values()), "messages left without a reply"
            system.kill_manager()
            system.start_manager()
            checklist = system.checklist()
        finally:
            client.close()
            system.stop()
        for n, (form, msg_type, payload) in enumerate(batch):
            kinds = {r["type"] for r in replies[n]}
            assert len(kinds) == 1, f"message {n} answered differently: {kinds}"
            [kind] = kinds
            clean = _unicode(payload) and _depth(payload) < 50 and form != "json" + "x"
            if msg_type == "unregistered type":
                assert kind in ("unregistered message type", "invalid message")
            elif clean and not (form == "json" and not _unicode(payload)):
                assert kind == "ack", f"message {n} ({form}) refused: {replies[n]}"
            if kind == "ack":
                assert f"m{n}" in checklist, f"acknowledged message {n} lost"
                assert _same(checklist[f"m{n}"], payload), (n, checklist[f"m{n}"], payload)
            else:
                assert f"m{n}" not in checklist, f"refused message {n} applied"
