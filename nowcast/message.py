"""Messages between workers and the manager.

On the wire a message is one UTF-8 frame holding a JSON object
``{"source": ..., "type": ..., "payload": ..., "id": ...}``. ``deserialize`` also
reads NEMO_Nowcast's YAML messages (safe loading only, with libyaml where it is
available; at most ``MAX_YAML_MESSAGE_SIZE`` bytes), so workers of a
NEMO_Nowcast system can talk to our manager unchanged.

Payload values JSON cannot carry are converted before sending (``to_plain``):
paths and other objects with a text form become strings, dates and times ISO 8601
strings, tuples and sets lists. An object without one (``str()`` gives only
``<... object at 0x...>``) is refused with ``PayloadError`` naming its key and type,
rather than written to the checklist as that.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nowcast.errors import MessageError, PayloadError

_quote = json.encoder.encode_basestring  # a str as JSON text, as json.dumps(ensure_ascii=False)

_FIELDS = ("source", "type", "payload", "id")
_FIELD_SET = frozenset(_FIELDS)


class Message:
    """One message: who sent it, its type, an optional payload, an optional id.

    ``id`` identifies a message across re-sends, so the manager applies it once.
    """

    __slots__ = _FIELDS

    def __init__(self, source: str, type: str, payload: Any = None, id: str | None = None):
        self.source = source
        self.type = type
        self.payload = payload
        self.id = id

    def serialize(self) -> str:
        """The message as one JSON string."""
        if self.payload is None and type(self.source) is str and type(self.type) is str:
            # most replies (ack): the same text json.dumps makes, without its set-up
            text = (
                f'{{"source": {_quote(self.source)}, "type": {_quote(self.type)}, "payload": null'
            )
            if self.id is None:
                return text + "}"
            if type(self.id) is str:
                return f'{text}, "id": {_quote(self.id)}}}'
        return json.dumps(self._as_dict(), ensure_ascii=False)

    def serialize_yaml(self) -> str:
        """The message as NEMO_Nowcast writes it (for replies to its workers)."""
        import yaml

        data = {"source": self.source, "type": self.type, "payload": self.payload}
        return yaml.safe_dump(data, allow_unicode=True)

    @classmethod
    def deserialize(cls, message: str | bytes) -> Message:
        """Parse a JSON or NEMO_Nowcast YAML message.

        :raises MessageError: for anything that is not a well-formed message.
        """
        data = load_message_data(message)[0]
        return cls._from_dict(data)

    def _as_dict(self) -> dict:
        data = {"source": self.source, "type": self.type, "payload": self.payload}
        if self.id is not None:
            data["id"] = self.id
        return data

    @classmethod
    def _from_dict(cls, data: Any) -> Message:
        if not isinstance(data, dict):
            raise MessageError(f"expected a mapping, got {type(data).__name__}")
        if not _FIELD_SET.issuperset(data):
            unknown = set(data) - _FIELD_SET
            raise MessageError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
        for field in ("source", "type"):
            if not isinstance(data.get(field), str):
                raise MessageError(f"field {field!r} must be a string, got {data.get(field)!r}")
        msg_id = data.get("id")
        if msg_id is not None and not isinstance(msg_id, str):
            raise MessageError(f"field 'id' must be a string, got {msg_id!r}")
        return cls(data["source"], data["type"], data.get("payload"), msg_id)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __repr__(self) -> str:
        return (
            f"Message(source={self.source!r}, type={self.type!r}, "
            f"payload={self.payload!r}, id={self.id!r})"
        )


def load_message_data(message: str | bytes, max_size: int | None = None) -> tuple[Any, str]:
    """Parse the text of a message; return the data and ``"json"`` or ``"yaml"``.

    A message over ``max_size`` bytes (``zmq: max message size``), or a YAML one
    over ``MAX_YAML_MESSAGE_SIZE``, is refused before it is parsed.
    """
    if max_size is not None and len(message) > max_size:
        raise MessageError(
            f"the message is {len(message)} bytes, over the limit of {max_size} bytes "
            f"(zmq: max message size)"
        )
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MessageError(f"not UTF-8 text: {e}") from None
    if not isinstance(message, str):
        raise MessageError(f"expected text, got {type(message).__name__}")
    if message.lstrip().startswith("{"):
        try:
            return json.loads(message), "json"
        except RecursionError:
            raise MessageError("nested too deeply") from None
        except ValueError:
            pass  # YAML flow mappings also start with "{"
    return _load_yaml(message), "yaml"


def _load_yaml(text: str) -> Any:
    import yaml

    from nowcast.defaults import MAX_YAML_MESSAGE_SIZE

    size = len(text.encode("utf-8"))
    if size > MAX_YAML_MESSAGE_SIZE:
        raise MessageError(
            f"a YAML message is at most {MAX_YAML_MESSAGE_SIZE} bytes, this one is {size}; "
            f"larger messages must be JSON"
        )
    try:
        data = yaml.load(text, Loader=yaml_loader())
    except RecursionError:
        raise MessageError("nested too deeply") from None
    except Exception as e:  # the YAML parser raises more than YAMLError on bad input
        raise MessageError(f"neither JSON nor YAML: {' '.join(str(e).split())[:200]}") from None
    _refuse_shared_nodes(data)
    return data


def yaml_loader() -> type:
    """libyaml's safe loader (several times faster) where PyYAML has it and its
    libyaml refuses deep nesting (0.2.6 and later stop at 1,000 levels; older ones
    overflow the C stack); else PyYAML's own, which raises RecursionError."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return yaml.SafeLoader
    from yaml import _yaml

    try:
        version = tuple(_yaml.get_version())
    except Exception:
        return yaml.SafeLoader
    return loader if version >= (0, 2, 6) else yaml.SafeLoader


def surely_writable(text: bytes, form: str, max_depth: int) -> bool:
    """Whether the JSON message ``text`` needs no ``check_writable``: JSON gives
    only kinds of values YAML writes; a lone surrogate can only come from a ``\\u``
    escape (UTF-8 cannot carry one); nesting is no deeper than the brackets in the
    text; and a whole number too long to write takes over 4,000 digits."""
    return (
        form == "json"
        and type(text) is bytes
        and len(text) <= 4000
        and b"\\u" not in text
        and text.count(b"{") + text.count(b"[") < max_depth
    )


def check_writable(data: Any, max_depth: int) -> None:
    """Check that the manager can write ``data`` (a message read from the wire)
    to its files: text that is valid Unicode (no lone surrogates, which JSON's
    ``\\ud800`` escapes make), at most ``max_depth`` levels of nesting, numbers
    that can be written as text, and only the kinds of values YAML writes.

    :raises MessageError: naming what cannot be written.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is str:
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise MessageError(
                        f"text that is not valid Unicode (a lone surrogate): {value[:40]!r}"
                    ) from None
        elif kind is dict or kind is list or kind is set:
            if depth >= max_depth:
                raise MessageError(f"nested deeper than {max_depth} levels")
            items = value.items() if kind is dict else ((None, v) for v in value)
            for key, item in items:
                stack.append((key, depth + 1))
                stack.append((item, depth + 1))
        elif kind is int:
            if value.bit_length() > _MAX_INT_BITS:
                raise MessageError(f"a whole number of {value.bit_length()} bits, too long")
        elif value is None or kind is float or kind is bool or kind is bytes:
            pass
        elif not _is_date(value):
            raise MessageError(f"a value of type {kind.__name__}, which cannot be written")


# Whole numbers longer than this are refused: Python will not turn one of more
# than 4,300 digits (about 14,000 bits) into text.
_MAX_INT_BITS = 14_000


def _is_date(value: Any) -> bool:
    import datetime

    return isinstance(value, datetime.date)


def _refuse_shared_nodes(data: Any) -> None:
    """Refuse YAML that uses one node twice (anchors and aliases): a small message
    could otherwise stand for an enormous checklist entry."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                raise MessageError("YAML anchors and aliases are not accepted in messages")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def to_plain(value: Any, _where: tuple = ()) -> Any:
    """Return ``value`` made of only what JSON carries: dicts with string keys,
    lists, strings, numbers, booleans and None.

    Tuples and sets become lists (sets sorted where they can be); dates, times and
    ``arrow.Arrow`` objects become ISO 8601 strings; anything else with a text of
    its own, such as a ``pathlib.Path``, becomes its ``str()``.

    :raises PayloadError: a value whose only text is ``<... at 0x...>``.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_plain_key(k): to_plain(v, (*_where, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, (*_where, i)) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [to_plain(v, _where) for v in value]
        try:
            items.sort()
        except TypeError:
            pass
        return items
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return to_plain(item(), _where)
        except (TypeError, ValueError):
            pass
    text = str(value)
    if _NO_TEXT.match(text):
        where = "payload key " + ": ".join(map(str, _where)) if _where else "the payload"
        kind = type(value)
        raise PayloadError(
            f"{where} holds a {kind.__module__}.{kind.__qualname__} value, which has no "
            f"text form for the checklist ({text}); use strings, numbers, booleans, "
            f"lists, dicts, dates or paths"
        )
    return text


# what str() gives for an object without a text of its own
_NO_TEXT = re.compile(r"<.* at 0x[0-9a-fA-F]+>$", re.S)


def _plain_key(key: Any) -> Any:
    if isinstance(key, str):
        return key
    plain = to_plain(key)
    return plain if isinstance(plain, str) else json.dumps(plain)
