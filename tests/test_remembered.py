"""nowcast.remembered: every applied id is found with its reply for as long as
promised, and no id is taken for another."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from nowcast.message import Message
from nowcast.remembered import RememberedIds


def reply_to(msg_id: str, kind: str = "ack", payload=None) -> str:
    return Message("manager", kind, payload, msg_id).serialize()


def test_every_id_of_a_burst_is_found_with_the_reply_it_got():
    ids = RememberedIds(keep_for=210.0, most=500_000)
    for n in range(100_000):  # many generations and index growths, all within keep_for
        ids.add(f"m{n}", reply_to(f"m{n}"), 1000.0 + n / 1000)
    assert len(ids) == 100_000
    for n in range(100_000):
        assert ids.get(f"m{n}") == reply_to(f"m{n}")
    # ids that share all but their end with remembered ones are not taken for them
    for other in ("m", "m100000", "m-1", "m00", "m1 ", "M1", "m1\x00"):
        assert other not in ids and ids.get(other) is None


def test_ids_of_any_text_and_length_and_replies_of_any_kind_come_back_exactly():
    ids = RememberedIds(keep_for=100.0, most=1000)
    cases = {
        'with "quotes" and \\ and \n': reply_to('with "quotes" and \\ and \n'),
        "é中🙂": reply_to("é中🙂", "unregistered message type", "sucess"),
        "x" * 300: reply_to("x" * 300),  # longer than a one-byte length
        "y" * 70_000: reply_to("y" * 70_000),
        "yaml": "payload: null\nsource: manager\ntype: ack\n",  # NEMO_Nowcast's form, no id
        "other": reply_to("not this id"),  # a reply that carries another id is kept whole
        "failed": reply_to("failed", "after_worker function failed", "KeyError: 'x' " * 40),
    }
    for msg_id, reply in cases.items():
        ids.add(msg_id, reply, 1.0)
    for msg_id, reply in cases.items():
        assert ids.get(msg_id) == reply
    assert [(i, r) for i, r, _ in ids.items()] == list(cases.items())


def test_ids_are_kept_for_keep_for_then_forgotten_with_their_generation():
    ids = RememberedIds(keep_for=80.0, most=1000)
    for t in range(200):
        ids.add(f"id-{t}", reply_to(f"id-{t}"), float(t))
        ids.forget_older(t - 80.0)
        for s in range(max(0, t - 80), t + 1):
            assert f"id-{s}" in ids  # never forgotten before keep_for
        for s in range(0, max(0, t - 80 - 10)):
            assert f"id-{s}" not in ids  # nor kept much longer (a generation: 10 s)


def test_beyond_the_most_the_oldest_are_forgotten_one_by_one():
    ids = RememberedIds(keep_for=1000.0, most=100)
    for n in range(1000):
        ids.add(f"id-{n}", "r", float(n) / 100)
        assert ids.forget_beyond_most() == (1 if n >= 100 else 0)
        assert len(ids) == min(n + 1, 100)
        assert f"id-{n - 100}" not in ids and f"id-{max(0, n - 99)}" in ids
    assert [i for i, _, _ in ids.items()] == [f"id-{n}" for n in range(900, 1000)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.floats(0, 50)), min_size=1, max_size=300
    )
)
def test_any_sequence_of_ids_is_remembered_exactly_as_a_dict_would(steps):
    """Against a plain dict: within keep_for every id applied is found, with its
    reply; an id never applied is never found."""
    ids = RememberedIds(keep_for=20.0, most=10_000)
    model: dict[str, tuple[str, float]] = {}
    now = 0.0
    for msg_id, step in steps:
        now += step / 10
        ids.forget_older(now - 20.0)
        if msg_id in model and now - model[msg_id][1] < 20.0:
            assert ids.get(msg_id) == model[msg_id][0]
            continue
        if msg_id not in ids:  # as the manager: only what is not remembered is applied
            reply = reply_to(msg_id, "ack", json.dumps(step))
            ids.add(msg_id, reply, now)
            model[msg_id] = (reply, now)
    for msg_id, (reply, when) in model.items():
        if now - when < 20.0:
            assert ids.get(msg_id) == reply
    for msg_id, _ in steps:
        assert (msg_id + "\x01") not in ids
