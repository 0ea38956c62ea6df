"""Race-condition groups: workers that must all report before what follows them runs.

An ``after_*`` function may return ``(next_workers, {names})``: ``next_workers`` are
launched at once, and from then on the workers launched by the ``after_*``
functions of the named workers are held back and collected, until every named
worker has reported; then the collected workers are launched together. Any number
of groups may wait at once; a name listed as a count in ``waiting`` stands for that
many instances of one worker.
"""

from __future__ import annotations

from typing import Any

import attrs

from nowcast.next_worker import NextWorker


@attrs.define
class RaceGroup:
    """One group: who has still to report, and what to launch when all have."""

    waiting: dict[str, int]
    collected: list[NextWorker] = attrs.field(factory=list)
    # what ``collected`` holds, to tell a new worker from one collected in O(1)
    _seen: set = attrs.field(factory=set, init=False, eq=False, repr=False)

    def collect(self, workers: list[NextWorker]) -> None:
        """Add each of ``workers`` not collected yet (as ``==`` tells), in order."""
        if len(self._seen) != len(self.collected):
            self._seen = {_key(w) for w in self.collected}
        for worker in workers:
            key = _key(worker)
            if key not in self._seen:
                self._seen.add(key)
                self.collected.append(worker)


@attrs.define
class RaceGroups:
    """Every group still waiting, oldest first."""

    groups: list[RaceGroup] = attrs.field(factory=list)
    #: the members of the group the last ``report`` completed (for the history)
    completed: list[str] | None = attrs.field(default=None, eq=False)

    def start(self, names: Any) -> RaceGroup:
        """Begin waiting for ``names`` (any iterable; repeats count as instances)."""
        waiting: dict[str, int] = {}
        for name in names:
            waiting[name] = waiting.get(name, 0) + 1
        group = RaceGroup(waiting)
        self.groups.append(group)
        return group

    def report(self, source: str, next_workers: list[NextWorker]) -> tuple[bool, list[NextWorker]]:
        """Record that ``source`` reported and its ``after_*`` chose ``next_workers``.

        Returns whether ``source`` belonged to a group, and the workers to launch now;
        ``completed`` then names the group's members if this report completed it.
        """
        self.completed = None
        for group in self.groups:
            if group.waiting.get(source, 0) > 0:
                group.waiting[source] -= 1
                group.collect(next_workers)
                if any(group.waiting.values()):
                    return True, []
                self.groups.remove(group)
                self.completed = sorted(group.waiting)
                return True, group.collected
        return False, list(next_workers)

    def to_plain(self) -> list[dict]:
        return [
            {
                "waiting": dict(group.waiting),
                "collected": [worker_to_plain(w) for w in group.collected],
            }
            for group in self.groups
        ]

    @classmethod
    def from_plain(cls, data: list[dict]) -> RaceGroups:
        return cls(
            [
                RaceGroup(dict(g["waiting"]), [worker_from_plain(w) for w in g["collected"]])
                for g in data
            ]
        )


def _key(worker: NextWorker) -> tuple:
    """What tells workers apart as ``NextWorker.__eq__`` does, hashable (args that
    are not, such as lists, by their repr)."""
    args: tuple = tuple(worker.args)
    try:
        hash(args)
    except TypeError:
        args = (repr(worker.args),)
    return (worker.module, args, worker.host)


def worker_to_plain(worker: NextWorker) -> dict:
    return {"module": worker.module, "args": [str(a) for a in worker.args], "host": worker.host}


def worker_from_plain(data: dict) -> NextWorker:
    return NextWorker(data["module"], list(data.get("args", [])), data.get("host", "localhost"))
