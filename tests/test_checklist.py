"""nowcast.checklist: merging, YAML that never goes stale, loading."""

from __future__ import annotations

import json
import random
import re

import yaml

from nowcast import checklist as checklist_module
from nowcast.checklist import Checklist


def test_merge_updates_dicts_in_place_and_replaces_the_rest():
    c = Checklist({"a": {"x": 1}, "b": [1]})
    c.merge("a", {"y": 2})
    c.merge("b", {"z": 3})
    c.merge("c", None)
    assert c == {"a": {"x": 1, "y": 2}, "b": {"z": 3}, "c": None}


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        keys = ["a", "b c", "d-e", "true", "1x", "é", "k: v"]
        return {
            f"{rng.choice(keys)}{rng.randint(0, 40)}": _value(rng, depth + 1)
            for _ in range(rng.randint(0, 20 if depth == 0 else 3))
        }
    if depth < 3 and roll < 0.4:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(
        [1, 2.5, "x", "two\nlines", "a: b", None, True, "", " lead", "#", "- x", "w " * 50]
    )


def test_yaml_matches_the_checklist_after_any_mutation():
    rng = random.Random(7)
    for _ in range(300):
        c = Checklist({f"k{i}": _value(rng) for i in range(5)})
        c.to_yaml()
        for _ in range(12):
            roll, key = rng.random(), f"k{rng.randint(0, 7)}"
            if roll < 0.4:
                c.merge(
                    key,
                    {f"s{rng.randint(0, 30)}": _value(rng)} if rng.random() < 0.8 else _value(rng),
                )
            elif roll < 0.5:
                value = c.get(key)
                if isinstance(value, dict):
                    value[f"z{rng.randint(0, 3)}"] = _value(rng)
            elif roll < 0.6:
                c.pop(key, None)
            elif roll < 0.65:
                c.clear()
            elif roll < 0.7:
                c.setdefault(key, _value(rng))
            elif roll < 0.85:
                c[key] = _value(rng)
            elif key in c:
                del c[key]
            if rng.random() < 0.7:
                loaded = yaml.safe_load(c.to_yaml()) or {}
                assert loaded == c.as_plain()
                assert _ordered(loaded) == _ordered(c.as_plain())


def test_many_entries_changed_anywhere_are_written_as_a_fresh_checklist_writes_them():
    """The entries' bytes are kept joined in blocks between writes: a change in
    any block, at its edges, or in several at once is in the next write."""
    rng = random.Random(11)
    block = checklist_module._BLOCK
    c = Checklist({f"e{i}": {"v": i} for i in range(3 * block + 5)})
    c.to_yaml()
    edges = [0, block - 1, block, 2 * block + 1, 3 * block + 4]
    for step in range(60):
        keys = [f"e{i}" for i in (edges if step % 7 == 0 else rng.sample(range(len(c)), 3))]
        for key in keys:
            c.merge(key, {"v": step} if step % 2 else step)
        written = c.to_yaml(b"#h\n", b"#t\n")
        fresh = Checklist(json.loads(json.dumps(c.as_plain()))).to_yaml()
        assert written == b"#h\n" + fresh + b"#t\n"
    assert Checklist().to_yaml(b"#h\n", b"#t\n") == b"#h\n{}\n#t\n"


def _ordered(value):
    """``value`` with every mapping as a list of pairs, so order counts in ==."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def test_a_large_entry_keeps_its_sub_keys_in_order_as_they_are_added():
    c = Checklist({"reports": {f"r{i}": i for i in range(20)}})
    c.to_yaml()
    for batch in range(30):
        for i in range(batch % 4 + 1):
            c.merge("reports", {f"n{batch}-{i}": {"file": f"/data/{batch}.nc"}})
        if batch % 5 == 0:
            c.merge("reports", {"r3": batch})
        text = c.to_yaml()
        assert _ordered(yaml.safe_load(text)) == _ordered(c.as_plain())


TRICKY = [
    1, -2.5, None, True, "", " lead", "trail ", "#", "- x", "a: b", "two\nlines", "\n\nx\n",
    "---", "...", "? q", ": v", "w " * 3000, "é ✓", [], {}, ["- a", ["b", {"c": "d"}]],
    {"x": [1, {"y": "two\n\nlines"}]}, [{"a": 1, "b": [2, 3]}], "'quoted'", '"dq"',
]  # fmt: skip


def test_one_dump_for_many_entries_cuts_into_what_a_dump_each_makes():
    rng = random.Random(11)
    keys = ["a", "b c", "true", "1", "null", "- k", "? k", ": k", "k" * 200, "é", "", "x\ny"]
    for _ in range(300):
        items = {}
        for _ in range(rng.randint(2, 8)):
            key = (
                f"{rng.choice(keys)}{rng.randint(0, 9)}"
                if rng.random() < 0.8
                else rng.randint(0, 9)
            )
            items[key] = rng.choice(TRICKY) if rng.random() < 0.6 else _value(rng)
        pairs = list(items.items())
        expected = [checklist_module._dump({k: v}) for k, v in pairs]
        one_dump = checklist_module._dump_text(dict(pairs), checklist_module._UnsharedDumper)
        assert checklist_module._top_level_pieces(one_dump) == expected
        assert checklist_module._dump_each(pairs) == expected
        indented = checklist_module._dump_each(pairs, indent=True)
        assert [line for f in indented for line in f.splitlines()] == [
            b"  " + line for f in expected for line in f.splitlines()
        ]


def test_plain_items_are_written_as_pyyaml_writes_them():
    """The items written without PyYAML come out byte for byte as its dump, and
    every other item is left to it."""
    rng = random.Random(3)
    words = ["true", "No", "ON", "null", "Null", "y", "n", "~", "yes", "1", "0x1f", "1e3", ".5"]
    values = [0, -7, 10**17, 10**18, 10**30, True, False, None, 2.5, "", [1], {"a": 1}]

    def text() -> str:
        roll = rng.random()
        if roll < 0.15:
            return rng.choice(words)
        chars = "aZy_/.-09 " + (":#'\"é\n" if roll < 0.4 else "")
        first = rng.choice("aZ_/" if roll > 0.6 else chars)
        return first + "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))

    def value_of(depth: int = 0):
        roll = rng.random()
        if roll < 0.2 and depth < 10:  # a mapping, nested up to 10 deep (8 are written)
            return {key_of(): value_of(depth + 1) for _ in range(rng.randint(0, 3))}
        return text() if roll < 0.75 else rng.choice(values)

    def key_of():
        return text() if rng.random() < 0.95 else rng.choice(values[:3])

    plain = nested = 0
    for _ in range(8000):
        key = key_of()
        value = value_of()
        made = checklist_module._plain_item(key, value)
        try:
            expected = checklist_module._dump_text({key: value})
        except Exception:
            expected = None
        if made is not None:
            plain += 1
            nested += isinstance(value, dict) and bool(value)
            assert made == expected, (key, value)
            assert yaml.safe_load(made) == {key: value}
    assert plain > 300 and nested > 30  # many are plain items, some of them mappings
    deep = {"run": {"type": "forecast2", "forecast": {"hours": 48, "ok": True, "files": {}}}}
    made = checklist_module._plain_item("nowcast", deep)
    assert made is not None and made == checklist_module._dump_text({"nowcast": deep})


def test_a_value_shared_by_two_entries_is_written_whole_in_each():
    shared = {"files": ["a.nc", "b.nc"]}
    c = Checklist({"x": shared, "y": shared, "z": 1})
    text = c.to_yaml()
    assert b"&" not in text and b"*" not in text
    assert yaml.safe_load(text) == {"x": shared, "y": shared, "z": 1}


def test_a_value_an_entry_holds_twice_is_written_whole_however_many_entries_changed():
    # one entry changed alone is dumped on its own, several are dumped together:
    # the entry's bytes must not depend on which
    files = ["a.nc", "b.nc"]
    c = Checklist({"x": {"in": files, "out": files}, "y": {"list": [1]}})
    together = c.to_yaml()
    c["x"]["in"] = files  # x alone changed
    alone = c.to_yaml()
    assert alone == together
    assert b"&" not in alone and b"*" not in alone
    assert yaml.safe_load(alone) == {"x": {"in": files, "out": files}, "y": {"list": [1]}}


def test_text_that_is_not_ascii_is_written_as_it_is():
    # operators read the file: a place name is written as itself, not escaped
    c = Checklist({"stations": {"first": "Saint-\u00c9lie", "second": "R\u00f8st"}, "n": 1})
    text = c.to_yaml()
    assert "Saint-\u00c9lie".encode() in text and "R\u00f8st".encode() in text
    assert b"\\x" not in text and b"\\u" not in text


def test_a_value_that_holds_itself_is_still_written():
    # only an after_ function can make one; YAML writes it with an alias
    loop: list = ["a"]
    loop.append(loop)
    c = Checklist({"x": loop, "y": 1})
    text = c.to_yaml()
    back = yaml.safe_load(text)
    assert back["y"] == 1 and back["x"][0] == "a" and back["x"][1] is back["x"]


def test_load_reads_a_checklist_written_by_nemo_nowcast(tmp_path):
    path = tmp_path / "nowcast_checklist.yaml"
    path.write_text(yaml.safe_dump({"sleepyhead": {"slept": 5}, "awake": True}))
    assert checklist_module.load(str(path)) == {"sleepyhead": {"slept": 5}, "awake": True}


def test_an_unreadable_file_is_moved_aside_not_lost(tmp_path):
    path = tmp_path / "checklist.yaml"
    path.write_text("a: [unclosed\n")
    assert checklist_module.load(str(path)) == {}
    aside = list(tmp_path.glob("checklist.yaml.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_text() == "a: [unclosed\n"


def test_the_file_nowcast_writes_loads_back_whole(tmp_path):
    path = tmp_path / "checklist.yaml"
    checklist = checklist_module.Checklist({"a": {"b": [1, 2]}, "c": "d"})
    path.write_bytes(checklist_module.to_file(checklist))
    assert yaml.safe_load(path.read_text()) == {"a": {"b": [1, 2]}, "c": "d"}  # plain YAML
    assert checklist_module.load(str(path)) == {"a": {"b": [1, 2]}, "c": "d"}


def test_a_file_cut_short_by_another_program_is_not_loaded_silently(tmp_path, caplog):
    path = tmp_path / "checklist.yaml"
    checklist = checklist_module.Checklist({f"key {n}": {"n": n} for n in range(10)})
    whole = checklist_module.to_file(checklist)
    lines = whole.splitlines(keepends=True)
    cut = b"".join(lines[: len(lines) // 2])  # at a line end: still valid YAML
    assert isinstance(yaml.safe_load(cut), dict)
    path.write_bytes(cut)
    assert checklist_module.load(str(path)) == {}
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "cut short" in errors[0].getMessage()
    [aside] = tmp_path.glob("checklist.yaml.unreadable-*")
    assert aside.read_bytes() == cut


def test_any_bytes_give_a_checklist_or_a_file_moved_aside(tmp_path):
    """Property: whatever the file holds, load returns a checklist and never
    raises; what it cannot take whole is moved aside, byte for byte."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    whole = checklist_module.to_file(checklist_module.Checklist({"a": {"b": 1}, "c": [1]}))
    contents = st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.integers(0, len(whole)).map(lambda n: whole[:n]),
        st.sampled_from(
            [
                b"null",
                b"[1, 2]",
                b"\x00\x00",
                b"a: !!python/object:os.system x",
                b"? [a]\n: 1\n",
                b"[" * 5000,
            ]
        ),
    )

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(contents)
    def check(content):
        directory = tmp_path / "t"
        directory.mkdir(exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        path = directory / "checklist.yaml"
        path.write_bytes(content)
        loaded = checklist_module.load(str(path))
        assert isinstance(loaded, dict)
        aside = list(directory.glob("checklist.yaml.unreadable-*"))
        if aside:
            assert loaded == {} and aside[0].read_bytes() == content and not path.exists()
        else:
            assert path.read_bytes() == content
        if content != whole and whole.startswith(content):  # cut short: never loaded
            assert aside

    check()


def test_rollback_undoes_every_kind_of_change():

    original = {"a": {"x": 1, "deep": {"l": [1]}}, "b": [1, 2], "c": 3, "d": {"k": "v"}}
    checklist = Checklist(json.loads(json.dumps(original)))
    checklist.begin()
    checklist.merge("a", {"x": 2, "new": 1})
    checklist["a"]["deep"]["l"].append(2)
    checklist["b"].append(3)
    checklist.merge("c", {"replaced": True})
    checklist.setdefault("e", []).append(1)
    checklist.pop("d")
    for _key, value in checklist.items():
        if isinstance(value, dict):
            value["via items"] = 1
    checklist.rollback()
    assert checklist == original
    assert yaml.safe_load(checklist.to_yaml()) == original
    checklist.begin()
    checklist.clear()
    checklist.rollback()
    assert checklist == original


def test_changes_after_end_are_kept():

    checklist = Checklist({"a": {"x": 1}})
    checklist.begin()
    checklist.merge("a", {"x": 2})
    checklist.end()
    checklist.merge("a", {"y": 3})
    assert checklist == {"a": {"x": 2, "y": 3}}


def test_large_entries_written_in_parts_match_a_whole_write_after_any_change():
    """Large dict entries are cached one sub-key at a time and only what changed
    is remade: after any change, and after a rollback, the YAML holds the
    checklist, in its order, byte for byte as a fresh checklist writes it."""
    import copy

    rng = random.Random(5)
    size = checklist_module._SPLIT_AT
    # keys YAML must quote or would read back otherwise cannot head an entry in parts
    keys = ["big", "k: v", "trail ", "true", "1x", "small", "n"]
    written = {}

    def check(c):
        plain = copy.deepcopy(c.as_plain())
        assert c.changed or plain == written
        text = c.to_yaml()
        assert not c.changed
        assert text == Checklist(copy.deepcopy(plain)).to_yaml()
        assert _ordered(yaml.safe_load(text) or {}) == _ordered(plain)
        written.clear()
        written.update(plain)

    for _ in range(30):
        c = Checklist({key: {f"s{j}": j for j in range(size + rng.randint(-1, 2))} for key in keys})
        check(c)
        undo = rng.random() < 0.3
        if undo:
            c.begin()
            before = copy.deepcopy(c.as_plain())
        for _ in range(8):
            roll, key = rng.random(), rng.choice(keys)
            if roll < 0.4:
                count = rng.randint(1, 3)
                c.merge(key, {f"s{rng.randint(0, size + 5)}": _value(rng) for _ in range(count)})
            elif roll < 0.5:  # every sub-key at once
                c.merge(key, {sub_key: rng.random() for sub_key in dict.get(c, key) or {"s": 1}})
            elif roll < 0.6:
                value = c.get(key)
                if isinstance(value, dict) and value:
                    value.pop(rng.choice(list(value)))
            elif roll < 0.7:
                value = c.get(key)
                if isinstance(value, dict):
                    value[f"s{rng.randint(0, size + 5)}"] = _value(rng)
            elif roll < 0.8:
                c[key] = {f"t{j}": j for j in range(rng.randint(0, size + 2))}
            elif roll < 0.9:
                c.pop(key, None)
            if rng.random() < 0.6:
                check(c)
        if undo:
            c.rollback()
            assert c.as_plain() == before
        check(c)


def _reference(c: Checklist) -> bytes:
    """The checklist's bytes as PyYAML writes each entry, with no cache at all."""
    items = list(dict.items(c))
    if not items:
        return b"{}\n"
    return b"".join(checklist_module._dump({k: v}) for k, v in items)


def _blank_lines_emptied(text: bytes) -> bytes:
    """``text`` with its lines of spaces alone made empty: a large entry written a
    sub-key at a time indents the empty line inside a quoted value that runs over
    lines, where PyYAML leaves it empty; YAML reads both as the same value."""
    return re.sub(rb"(?m)^ +$", b"", text)


def test_the_bytes_written_are_pyyaml_s_after_any_sequence_of_changes():
    """Property: whatever changes came between writes (merges into large and small
    entries, sub-keys changed, added or taken out through the entry, entries
    replaced, removed, re-added, a rollback), each write is byte for byte what
    PyYAML writes for each entry afresh: the cached fragments, the large entries'
    sub-key fragments and the joined blocks never go stale."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(st.tuples(st.integers(0, 10), st.integers(0, 5), st.integers(0, 2**32)))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.integers(0, 2**32), ops)
    def check(seed, steps):
        rng = random.Random(seed)
        c = Checklist(
            {
                f"k{i}": {f"s{j}": _value(rng, 1) for j in range(rng.choice([0, 3, 17, 20]))}
                if rng.random() < 0.7
                else _value(rng)
                for i in range(rng.randint(0, 4))
            }
        )
        c.to_yaml()
        for op, k, value_seed in steps:
            r = random.Random(value_seed)
            key, sub = f"k{k}", f"s{r.randint(0, 24)}"
            entry = dict.get(c, key)
            if op <= 2:
                c.merge(key, {f"s{r.randint(0, 24)}": _value(r, 1) for _ in range(r.randint(1, 3))})
            elif op == 3:
                c.merge(key, _value(r))
            elif op == 4 and isinstance(entry, dict):
                c[key][sub] = _value(r, 1)
            elif op == 5 and isinstance(entry, dict):
                c[key].pop(r.choice([sub, *entry][:2]), None)
            elif op == 6:
                c.pop(key, None)
            elif op == 7:
                c[key] = {f"s{j}": j for j in range(r.choice([1, 16, 18]))}
            elif op == 8:
                assert _blank_lines_emptied(c.to_yaml()) == _reference(c)
            elif op == 9:
                c.begin()
                c.merge(key, {sub: "undone"})
                c.pop(f"k{(k + 1) % 6}", None)
                c.rollback()
            elif op == 10 and isinstance(entry, dict):
                c[key].clear()
        written = c.to_yaml(b"#h\n", b"#t\n")
        assert _blank_lines_emptied(written) == b"#h\n" + _reference(c) + b"#t\n"

    check()
