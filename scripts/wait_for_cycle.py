"""Wait for a nowcast cycle to end, watching the manager through nowcast.status.

The cycle has ended when the manager reports nothing running, pending, retrying
or waiting in a race group, and has received a message from the last worker
(``--last``), or from a worker that failed or crashed with nothing following it,
or (a stall) nothing has happened for a few seconds although the last worker
has not reported.

Exit 0 when the last worker reported success. Exit 1 when a worker failed (each
named with the error lines it and the manager logged about it, and the log file
they are in) or the cycle stalled (naming the last message, whose after_
function launched nothing). Exit 2 when the time limit passes first, naming the
workers the cycle is still waiting for and the last message.

Usage: python scripts/wait_for_cycle.py CONFIG --last WORKER [--since TIME] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

from nowcast.config import Config
from nowcast.status import ask

# Seconds of nothing running, pending or waiting, without a new message, that
# make an unfinished cycle a stalled one.
STALL_AFTER = 3.0

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (ERROR|CRITICAL) \[(\w+)\] (.*)$")


def idle(status: dict) -> bool:
    return not (
        status["running"]
        or status["launches pending"]
        or status["retries pending"]
        or status["race groups"]
    )


def clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def log_files(config: Config) -> list[str]:
    """The files the config's logging handlers write to."""
    handlers = (config.get("logging") or {}).get("handlers") or {}
    files = [h["filename"] for h in handlers.values() if isinstance(h, dict) and h.get("filename")]
    return [f for f in files if os.path.exists(f)]


def causes(config: Config, workers: list[str], since: float) -> list[str]:
    """The error lines logged since ``since`` by each of ``workers``, or by the
    manager about it, with the file they are in (the first file that has any)."""
    lines = []
    for path in log_files(config):
        found = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                match = _LOG_LINE.match(line.rstrip("\n"))
                if not match:
                    continue
                when = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S"))
                if when + 1 < since:
                    continue
                logger, text = match[3], match[4]
                for worker in workers:
                    if logger == worker or (logger == "manager" and text.startswith(f"{worker} ")):
                        found.append(f"  {worker}: {match[2]} [{logger}] {text}")
        if found:
            shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
            lines += list(dict.fromkeys(found))
            lines.append(f"  (from {shown})")
            break
    return lines


def waiting_for(status: dict) -> list[str]:
    """What an unfinished cycle is waiting for, one line each."""
    lines = []
    for w in status["running"]:
        lines.append(
            f"  running: {w['name']} (pid {w['pid']}, for {w['running for']:.0f} s, try {w['try']})"
        )
    for r in status["retries pending"]:
        lines.append(f"  retry pending: {r['module']} (try {r['try']}, due in {r['due in']:.0f} s)")
    for g in status["race groups"]:
        lines.append(f"  race group waiting for: {', '.join(g['waiting for'])}")
    for w in status["launches pending"]:
        lines.append(f"  launch pending: {w['module']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config_file")
    parser.add_argument("--last", required=True, help="The worker that ends a good cycle.")
    parser.add_argument(
        "--since", type=float, default=time.time(), help="Count messages after this time."
    )
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    config = Config()
    config.load(args.config_file)
    deadline = time.monotonic() + args.timeout
    seen, status, quiet_since = 0, None, None
    while time.monotonic() < deadline:
        status = ask(config, 5) or status
        if status is None:
            time.sleep(0.25)
            continue
        messages = [m for m in status["recent messages"] if m["time"] >= args.since]
        for m in messages[seen:]:
            print(f"  {clock(m['time'])}  {m['source']}: {m['type']}", flush=True)
        if len(messages) != seen or not idle(status):
            quiet_since = None
        seen = len(messages)
        if messages and idle(status):
            latest = {m["source"]: m["type"] for m in messages}  # a retry may have succeeded
            failed = [w for w, t in latest.items() if t == "crash" or t.startswith("failure")]
            last = messages[-1]
            if last["source"] == args.last and last["type"] == "success" and not failed:
                print(f"cycle complete: {args.last} reported success")
                return
            if failed:
                print(
                    "cycle FAILED: " + ", ".join(f"{w} ({latest[w]})" for w in failed),
                    file=sys.stderr,
                )
                print("\n".join(causes(config, failed, args.since)), file=sys.stderr)
                sys.exit(1)
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= STALL_AFTER:
                print(
                    f"cycle stopped before {args.last} reported: the last message was "
                    f"{last['source']} ({last['type']}) at {clock(last['time'])}, and nothing "
                    f"is running, pending or waiting since: after_{last['source']} launched "
                    f"nothing",
                    file=sys.stderr,
                )
                sys.exit(1)
        time.sleep(0.25)
    print(f"cycle did not end within {args.timeout:g} s", file=sys.stderr)
    if status is None:
        print("  the manager never answered (is it running?)", file=sys.stderr)
    else:
        print("\n".join(waiting_for(status)) or "  nothing running or waiting", file=sys.stderr)
        messages = [m for m in status["recent messages"] if m["time"] >= args.since]
        if messages:
            last = messages[-1]
            print(
                f"  last message: {last['source']} ({last['type']}) at {clock(last['time'])}",
                file=sys.stderr,
            )
        else:
            print("  no message received since the cycle started", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
