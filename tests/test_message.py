"""nowcast.message: both wire formats, malformed input, plain payloads."""

from __future__ import annotations

import datetime
import json
import pathlib

import arrow
import pytest
import yaml

from nowcast.errors import MessageError
from nowcast.message import Message, to_plain


def test_json_round_trip_with_id():
    msg = Message("sleep", "success", {"slept": 5, "files": ["a", "b"]}, id="sleep:1:ab:1")
    text = msg.serialize()
    assert json.loads(text)["id"] == "sleep:1:ab:1"
    assert Message.deserialize(text) == msg
    assert Message.deserialize(text.encode()) == msg


def test_nemo_nowcast_yaml_message_deserializes():
    text = yaml.dump({"source": "sleep", "type": "success", "payload": {"slept": 5}})
    assert Message.deserialize(text) == Message("sleep", "success", {"slept": 5})


def test_yaml_reply_for_nemo_nowcast_workers():
    reply = Message("manager", "ack", {"a": 1}, id="x").serialize_yaml()
    assert yaml.safe_load(reply) == {"source": "manager", "type": "ack", "payload": {"a": 1}}


MALFORMED = [
    b"",
    b"\xff\xfe",
    b"{not json",
    b"[1, 2]",
    b"42",
    b"null",
    b'{"source": 1, "type": "x"}',
    b'{"source": "a"}',
    b'{"source": "a", "type": "b", "extra": 1}',
    b'{"source": "a", "type": "b", "id": 3}',
    ("[" * 100_000 + "]" * 100_000).encode(),
    ("{" * 50_000 + "}" * 50_000).encode(),
    "".join(" " * i + "a:\n" for i in range(2000)).encode(),
    b"a: &a [1, 2]\nb: [*a, *a]\n",
    b"source: a\ntype: b\npayload: !!python/object/apply:os.system ['true']\n",
    b"source: a\ntype: b\n  bad: indentation\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_input_raises_message_error_only(raw):
    with pytest.raises(MessageError):
        Message.deserialize(raw)


def test_to_plain_converts_what_json_cannot_carry():
    when = datetime.datetime(2026, 11, 24, 5, 30)
    payload = {
        "path": pathlib.Path("/results/run.nc"),
        "when": when,
        "day": datetime.date(2026, 11, 24),
        "arrow": arrow.get("2026-11-24"),
        "pair": (1, 2),
        "set": {3, 1, 2},
        1: "int key",
        ("a", "b"): "tuple key",
    }
    plain = to_plain(payload)
    assert plain == {
        "path": "/results/run.nc",
        "when": "2026-11-24T05:30:00",
        "day": "2026-11-24",
        "arrow": "2026-11-24T00:00:00+00:00",
        "pair": [1, 2],
        "set": [1, 2, 3],
        "1": "int key",
        '["a", "b"]': "tuple key",
    }
    json.dumps(plain)


def test_to_plain_refuses_a_value_without_a_text_form():
    from nowcast.errors import PayloadError

    class Opaque:
        pass

    with pytest.raises(PayloadError, match=r"payload key runs: 1: handle holds a .*Opaque value"):
        to_plain({"runs": [{}, {"handle": Opaque()}]})
    with pytest.raises(PayloadError, match="the payload holds a builtins.function"):
        to_plain(lambda: None)
    assert to_plain({"ok": pathlib.Path("x")}) == {"ok": "x"}
