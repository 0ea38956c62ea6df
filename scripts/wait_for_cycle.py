"""Wait for a nowcast cycle to end, watching the manager through nowcast.status.

The cycle has ended when the manager reports nothing running, pending, retrying
or waiting in a race group, and has received a message from the last worker
(``--last``) or from a worker that failed or crashed with nothing following it.
Exit 0 when the last worker reported success; 1, naming the workers that failed,
otherwise; 2 when the time limit passes first.

Usage: python scripts/wait_for_cycle.py CONFIG --last WORKER [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time

from nowcast.config import Config
from nowcast.status import ask


def idle(status: dict) -> bool:
    return not (
        status["running"]
        or status["launches pending"]
        or status["retries pending"]
        or status["race groups"]
    )


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
    seen = 0
    while time.monotonic() < deadline:
        status = ask(config, 5)
        if status is not None:
            messages = [m for m in status["recent messages"] if m["time"] >= args.since]
            for m in messages[seen:]:
                print(
                    f"  {time.strftime('%H:%M:%S', time.localtime(m['time']))}  {m['source']}: {m['type']}"
                )
            seen = len(messages)
            if messages and idle(status):
                failed = list(
                    dict.fromkeys(
                        f"{m['source']} ({m['type']})"
                        for m in messages
                        if m["type"] == "crash" or m["type"].startswith("failure")
                    )
                )
                last = messages[-1]
                if last["source"] == args.last and last["type"] == "success" and not failed:
                    print(f"cycle complete: {args.last} reported success")
                    return
                if failed:
                    print(f"cycle FAILED: {', '.join(failed)} - see the logs", file=sys.stderr)
                    sys.exit(1)
        time.sleep(0.25)
    print(f"cycle did not end within {args.timeout:g} s", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
