"""nowcast.race: race-condition group book-keeping."""

from __future__ import annotations

from nowcast.next_worker import NextWorker
from nowcast.race import RaceGroups

D = NextWorker("workers.d")
E = NextWorker("workers.e", ["--x"])


def test_group_holds_until_every_member_reported():
    groups = RaceGroups()
    groups.start({"b", "c"})
    assert groups.report("b", [D]) == (True, [])
    assert groups.report("c", [D, E]) == (True, [D, E])
    assert groups.groups == []


def test_a_worker_outside_any_group_launches_at_once():
    groups = RaceGroups()
    groups.start({"b"})
    assert groups.report("z", [D]) == (False, [D])


def test_two_groups_at_once_and_instances_of_one_worker():
    groups = RaceGroups()
    groups.start(["get", "get"])
    groups.start({"other"})
    assert groups.report("get", [D]) == (True, [])
    assert groups.report("other", [E]) == (True, [E])
    assert groups.report("get", [D]) == (True, [D])
    assert groups.groups == []


def test_round_trip_through_plain_data():
    groups = RaceGroups()
    groups.start(["a", "a", "b"])
    groups.report("a", [E])
    again = RaceGroups.from_plain(groups.to_plain())
    assert again == groups
    assert again.report("a", []) == (True, [])
    assert again.report("b", []) == (True, [E])


def test_what_members_launch_is_collected_once_each_in_order():
    groups = RaceGroups()
    groups.start(["m"] * 3)
    listed = NextWorker("workers.f", [["a", 1]])  # an argument that is not hashable
    assert groups.report("m", [D, NextWorker("workers.d"), listed]) == (True, [])
    assert groups.report("m", [E, D, NextWorker("workers.f", [["a", 1]])]) == (True, [])
    assert groups.report("m", [NextWorker("workers.e", ["--x"]), NextWorker("workers.d", [1])]) == (
        True,
        [D, listed, E, NextWorker("workers.d", [1])],
    )


def test_a_group_read_back_from_plain_data_still_collects_each_worker_once():
    # after a restart the group comes back from the state file with what it had
    # collected; a member reporting the same next worker again must not add it twice
    # (it would be launched twice when the group completes)
    groups = RaceGroups()
    groups.start(["a", "b", "c"])
    groups.report("a", [D])
    again = RaceGroups.from_plain(groups.to_plain())
    assert again.report("b", [D, E]) == (True, [])
    assert again.report("c", [E, D]) == (True, [D, E])
