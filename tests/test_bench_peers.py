"""benchmarks/peers.py, without running a peer: the Cylc workflows it generates
look like what they stand for, and NEMO_Nowcast is skipped with one line when its
source is not at hand. Nothing here installs Cylc."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import peers  # noqa: E402


def sections(flow: str) -> list[tuple[int, str]]:
    """The ``[...]`` headings of a flow.cylc, with their depth; fails on a heading
    whose brackets do not match or that skips a level."""
    found, depth = [], 0
    for line in flow.splitlines():
        m = re.fullmatch(r"\s*(\[+)([^\[\]]+)(\]+)\s*", line)
        if not m:
            continue
        assert len(m.group(1)) == len(m.group(3)), line
        assert len(m.group(1)) <= depth + 1, f"{line!r} skips a level"
        depth = len(m.group(1))
        found.append((depth, m.group(2).strip()))
    return found


def settings(flow: str) -> dict[str, str]:
    return dict(
        (k.strip(), v.strip())
        for k, v in (line.split("=", 1) for line in flow.splitlines() if "=" in line)
    )


@pytest.mark.parametrize("workload", ["chain", "fanout", "retry", "timeout"])
def test_each_generated_flow_has_the_sections_cylc_needs(workload, tmp_path):
    flow = peers.cylc_flow(workload, tmp_path / "stamps.txt", tmp_path / "stamp.sh", members=200)
    heads = sections(flow)
    for needed in [(1, "scheduler"), (1, "scheduling"), (2, "graph"), (1, "runtime")]:
        assert needed in heads
    assert flow.count('"""') % 2 == 0
    values = settings(flow)
    assert values["platform"] == "localhost"
    assert values["abort on stall timeout"] == "True"
    graph = values["R1"].strip('"')
    # every task the graph names has a runtime section, and only those
    tasks = {t.split(":")[0].rstrip("?") for t in re.split(r"\s*=>\s*", graph)}
    runtime = {
        name.strip()
        for depth, names in heads[heads.index((1, "runtime")) :]
        if depth == 2 and names != "root"
        for name in names.split(",")
    }
    assert tasks == runtime


def test_the_workloads_say_what_they_measure(tmp_path):
    def flow(workload: str, members: int = 0) -> dict[str, str]:
        text = peers.cylc_flow(workload, tmp_path / "s", tmp_path / "stamp.sh", members)
        return settings(text)

    assert flow("chain")["R1"] == '"' + " => ".join(f"hop{i}" for i in range(10)) + '"'
    fanout = flow("fanout", 1000)
    assert fanout["m"] == "0..999"
    assert fanout["R1"] == '"start => member<m> => final"'
    assert "stamp.sh" in fanout["succeeded handlers"]
    assert flow("retry")["execution retry delays"] == "PT0S"
    timeout = flow("timeout")
    assert timeout["execution time limit"] == f"PT{peers.TIME_LIMIT}S"
    assert "stamp.sh" in timeout["failed handlers"]
    with pytest.raises(ValueError):
        peers.cylc_flow("nothing", tmp_path / "s", tmp_path / "stamp.sh")


def nemo_only(env: dict) -> str:
    """What peers.py prints asked for NEMO_Nowcast alone and no workload."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "peers.py"), "--peers", "nemo", "--only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_without_its_source_nemo_nowcast_is_skipped_with_one_line():
    env = {k: v for k, v in os.environ.items() if k != "NEMO_NOWCAST_SRC"}
    out = nemo_only(env)
    lines = [line for line in out.splitlines() if "NEMO_Nowcast" in line]
    assert lines == [
        "NEMO_Nowcast: skipped: NEMO_NOWCAST_SRC is not set (NEMO_Nowcast is not on the "
        "package index; point NEMO_NOWCAST_SRC at a source checkout to include it)"
    ]
    # and a checkout that is not one is named as such
    env["NEMO_NOWCAST_SRC"] = str(BENCHMARKS)
    out = nemo_only(env)
    assert f"NEMO_Nowcast: skipped: NEMO_NOWCAST_SRC={BENCHMARKS} holds no" in out
