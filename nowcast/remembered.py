"""The ids of applied messages and the replies they got, kept compactly in memory.

The manager answers a re-sent message (same id) with the reply it gave the first
time, for as long as any worker re-sends (``nowcast.state.ReplyJournal``). A burst
keeps every id of it: as Python strings in dicts, an id with its reply and time
took about 300 bytes, so 100,000 messages cost 30 MB. Here an id takes its UTF-8
bytes plus a few: one record in a byte buffer (length, id, reply number) and a
slot in an open-addressing hash table of offsets into that buffer. A reply is kept
once per distinct text; the id a JSON reply carries is taken out of it and put back
when the reply is sent again, so every ``ack`` shares one text.

Records are kept in generations, in the order they were applied: a generation is
closed after an eighth of the keeping time or of the most ids kept, and dropped as
a whole once its newest id is older than the keeping time. Forgetting the oldest
ids early (more than the most ids kept) moves the start of the oldest generation
past them. Lookups compare the whole id, so no two ids are ever taken for one.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from json.encoder import encode_basestring

# A generation is closed after this fraction of the keeping time or of the most ids
# kept; an id is then kept at most this fraction longer than it must be.
_GENERATION = 1 / 8
# Largest buffer of one generation (offsets are 32-bit).
_MAX_BUFFER = 1 << 30


def _reply_suffix(msg_id: str) -> str:
    """How ``Message.serialize`` ends a reply that carries ``msg_id``."""
    return f', "id": {encode_basestring(msg_id)}}}'


class _Generation:
    """Records of ids applied within one stretch of time, and their index."""

    __slots__ = (
        "blob",
        "index",
        "mask",
        "used",
        "count",
        "live",
        "live_from",
        "first",
        "last",
        "texts",
    )

    def __init__(self, when: float) -> None:
        self.blob = bytearray()
        self.index = array("i", bytes(4 * 16))  # record offset + 1; 0: an empty slot
        self.mask = 15
        self.used = 0  # slots of the index in use
        self.count = 0  # records in the buffer
        self.live = 0  # of those, not forgotten
        self.live_from = 0  # offset of the oldest record not forgotten
        self.first = self.last = when
        # reply texts by number, and numbers by (text, whether the id goes back in)
        self.texts: dict = {}

    def find(self, key: bytes, h: int) -> int:
        """The offset of ``key``'s record (not forgotten), or -1."""
        index, mask, blob, n = self.index, self.mask, self.blob, len(key)
        i = h & mask
        while True:
            slot = index[i]
            if not slot:
                return -1
            offset = slot - 1
            if offset >= self.live_from:
                size = blob[offset]
                start = offset + 1
                if size == 255:
                    size = int.from_bytes(blob[start : start + 4], "little")
                    start += 4
                if size == n and blob.startswith(key, start):
                    return offset
            i = (i + 1) & mask

    def add(self, key: bytes, h: int, text: str, with_id: bool, when: float) -> None:
        number = self.texts.get((text, with_id))
        if number is None:
            number = self.texts[(text, with_id)] = len(self.texts)
            self.texts[number] = (text, with_id)
        blob = self.blob
        offset = len(blob)
        _put_size(blob, len(key))
        blob += key
        _put_size(blob, number)
        self.count += 1
        self.live += 1
        self.used += 1
        if self.used * 2 > len(self.index):
            self._grow()
        else:
            self._place(offset, h)
        if when > self.last:
            self.last = when
        elif when < self.first:
            self.first = when

    def _place(self, offset: int, h: int) -> None:
        index, mask = self.index, self.mask
        i = h & mask
        while index[i]:
            i = (i + 1) & mask
        index[i] = offset + 1

    def _grow(self) -> None:
        """Double the index (live records only) and place every record again."""
        size = len(self.index) * 2
        while self.live * 2 > size:
            size *= 2
        self.index = array("i", bytes(4 * size))
        self.mask = size - 1
        self.used = self.live
        for offset, key, _ in self.records():
            self._place(offset, hash(key))

    def records(self) -> Iterator[tuple[int, bytes, int]]:
        """(offset, id bytes, reply number) of each record not forgotten, oldest first."""
        blob, offset, end = self.blob, self.live_from, len(self.blob)
        while offset < end:
            start, size = _size_at(blob, offset)
            key = bytes(blob[start : start + size])
            after, number = _size_at(blob, start + size)
            yield offset, key, number
            offset = after

    def reply(self, offset: int, msg_id: str) -> str:
        start, size = _size_at(self.blob, offset)
        text, with_id = self.texts[_size_at(self.blob, start + size)[1]]
        return text + _reply_suffix(msg_id) if with_id else text

    def forget_oldest(self) -> None:
        start, size = _size_at(self.blob, self.live_from)
        self.live_from = _size_at(self.blob, start + size)[0]
        self.live -= 1


def _put_size(blob: bytearray, size: int) -> None:
    if size < 255:
        blob.append(size)
    else:
        blob.append(255)
        blob += size.to_bytes(4, "little")


def _size_at(blob: bytearray, offset: int) -> tuple[int, int]:
    """(where what follows starts, the size written at ``offset``)."""
    size = blob[offset]
    if size < 255:
        return offset + 1, size
    return offset + 5, int.from_bytes(blob[offset + 1 : offset + 5], "little")


class RememberedIds:
    """Message ids with their replies, by the time they were applied, oldest first."""

    def __init__(self, keep_for: float, most: int) -> None:
        self.keep_for = keep_for  # seconds
        self.most = most  # ids
        self._generations: list[_Generation] = []
        self._count = 0  # ids remembered (not forgotten)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, msg_id: str) -> bool:
        key = msg_id.encode("utf-8", "surrogatepass")
        h = hash(key)
        return any(g.find(key, h) >= 0 for g in self._generations)

    def get(self, msg_id: str) -> str | None:
        """The reply ``msg_id`` got, or None when it is not remembered."""
        key = msg_id.encode("utf-8", "surrogatepass")
        h = hash(key)
        for generation in reversed(self._generations):
            offset = generation.find(key, h)
            if offset >= 0:
                return generation.reply(offset, msg_id)
        return None

    def add(self, msg_id: str, reply: str, when: float) -> None:
        """Remember ``msg_id`` (not remembered yet) with ``reply``, applied at ``when``."""
        suffix = _reply_suffix(msg_id)
        with_id = reply.endswith(suffix)
        text = reply[: -len(suffix)] if with_id else reply
        generations = self._generations
        current = generations[-1] if generations else None
        if (
            current is None
            or when - current.first > self.keep_for * _GENERATION
            or current.count >= max(64, int(self.most * _GENERATION))
            or len(current.blob) > _MAX_BUFFER
        ):
            current = _Generation(when)
            generations.append(current)
        key = msg_id.encode("utf-8", "surrogatepass")
        current.add(key, hash(key), text, with_id, when)
        self._count += 1

    def forget_older(self, oldest: float) -> None:
        """Forget the ids applied before ``oldest`` (whole generations: each id is
        kept until at least then)."""
        generations = self._generations
        while generations and generations[0].last < oldest:
            self._count -= generations.pop(0).live

    def forget_beyond_most(self) -> int:
        """Forget the oldest ids beyond ``most``; return how many."""
        extra = self._count - self.most
        if extra <= 0:
            return 0
        for _ in range(extra):
            oldest = self._generations[0]
            oldest.forget_oldest()
            if not oldest.live:
                del self._generations[0]
        self._count -= extra
        return extra

    def items(self) -> Iterator[tuple[str, str, float]]:
        """(id, reply, time) of every id remembered, oldest first; the time is
        that of the newest id of its generation (never earlier than its own)."""
        for generation in self._generations:
            for offset, key, _ in generation.records():
                msg_id = key.decode("utf-8", "surrogatepass")
                yield msg_id, generation.reply(offset, msg_id), generation.last
