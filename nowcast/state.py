"""The manager's own state, kept in a JSON file beside the checklist file.

It holds what the checklist must not: the ids of recently applied messages with
the replies they got (so a re-sent message is answered, not applied twice), the
race-condition groups still waiting, the workers decided on but not yet
launched, the workers launched and still watched, retries due, and the last few
messages (for ``nowcast.status``). It is written atomically, after the checklist and before any reply.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict

import attrs

from nowcast import defaults
from nowcast.fileutils import atomic_write
from nowcast.race import RaceGroups, worker_from_plain, worker_to_plain
from nowcast.supervision import Supervision
from nowcast.worker import NextWorker

logger = logging.getLogger(__name__)

FORMAT = 1


def state_path(checklist_file: str) -> str:
    """The state file that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-state.json"


@attrs.define
class ManagerState:
    """Everything the manager must remember across a restart besides the checklist."""

    replies: OrderedDict = attrs.field(factory=OrderedDict)
    races: RaceGroups = attrs.field(factory=RaceGroups)
    pending: list[tuple[NextWorker, int]] = attrs.field(factory=list)  # (worker, try)
    remembered: int = defaults.REMEMBERED_IDS
    supervision: Supervision = attrs.field(factory=Supervision)
    recent: list[dict] = attrs.field(factory=list)

    def note_message(self, source: str, msg_type: str, when: float) -> None:
        """Keep the last few messages, newest last."""
        self.recent.append({"time": when, "source": source, "type": msg_type})
        del self.recent[: -defaults.RECENT_MESSAGES]

    # each remembered reply's JSON, kept so writing the state does not encode them again
    _encoded: dict = attrs.field(factory=dict, repr=False, eq=False)

    def remember(self, msg_id: str, reply: str) -> None:
        """Keep the reply to message ``msg_id``, forgetting the oldest beyond the limit."""
        self.replies[msg_id] = reply
        self._encoded.pop(msg_id, None)
        while len(self.replies) > self.remembered:
            oldest, _ = self.replies.popitem(last=False)
            self._encoded.pop(oldest, None)

    def _replies_json(self) -> str:
        encoded = self._encoded
        for msg_id, reply in self.replies.items():
            if msg_id not in encoded:
                encoded[msg_id] = (
                    f"{json.dumps(msg_id, ensure_ascii=False)}: {json.dumps(reply, ensure_ascii=False)}"
                )
        return "{" + ", ".join(encoded[msg_id] for msg_id in self.replies) + "}"

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "replies": "@REPLIES@",
            "race groups": self.races.to_plain(),
            "pending launches": [{**worker_to_plain(w), "try": tries} for w, tries in self.pending],
            "supervision": self.supervision.to_plain(),
            "recent messages": self.recent,
        }
        text = json.dumps(data, ensure_ascii=False)
        return text.replace('"@REPLIES@"', self._replies_json(), 1).encode("utf-8")

    def save(self, path: str) -> None:
        atomic_write(path, self.to_json(), sync_dir=False)

    @classmethod
    def load(cls, path: str, remembered: int = defaults.REMEMBERED_IDS) -> ManagerState:
        """Read the state file; an absent one gives a fresh state, an unreadable
        one is moved aside with a log line."""
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
            state = cls(
                OrderedDict(data.get("replies", {})),
                RaceGroups.from_plain(data.get("race groups", [])),
                [(worker_from_plain(w), w.get("try", 1)) for w in data.get("pending launches", [])],
                remembered,
                Supervision.from_plain(data.get("supervision", {})),
                list(data.get("recent messages", [])),
            )
        except FileNotFoundError:
            return cls(remembered=remembered)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            aside = f"{path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}"
            os.replace(path, aside)
            logger.error(
                "manager state file %s cannot be read (%s); moved it to %s", path, e, aside
            )
            return cls(remembered=remembered)
        logger.info(
            "manager state read from %s: %d remembered message ids, %d race groups waiting, "
            "%d launches pending, %d launched workers watched",
            path,
            len(state.replies),
            len(state.races.groups),
            len(state.pending),
            len(state.supervision.running),
        )
        return state
