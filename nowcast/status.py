"""Show what the running manager is doing: ``python -m nowcast.status config.yaml``.

Asks the manager through the broker (a read-only request) and prints the workers
running, retries pending, race-condition groups waiting, the last messages, and
the checklist's keys. ``--json`` prints the same as JSON. Exits 1 when no manager
answers within ``--timeout`` seconds.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from nowcast import defaults
from nowcast.config import Config, require_zmq
from nowcast.errors import ConfigError, MessageError
from nowcast.message import Message

SOURCE = "nowcast.status"


def ask(config: Config, timeout: float) -> dict | None:
    """The manager's status, or None when it does not answer in ``timeout`` s."""
    import zmq

    from nowcast import sockets

    context = zmq.Context()
    request = Message(SOURCE, "status").serialize()
    deadline = time.monotonic() + timeout
    try:
        while True:  # re-send each second: the broker drops requests while no manager is connected
            socket = sockets.client(context, zmq.REQ, config, "workers")
            socket.send_string(request)
            wait = min(1.0, deadline - time.monotonic())
            if socket.poll(max(wait, 0) * 1000):
                reply = Message.deserialize(socket.recv())
                break
            socket.close(linger=0)
            if time.monotonic() >= deadline:
                return None
    finally:
        context.destroy(linger=0)
    if reply.type != "status" or not isinstance(reply.payload, dict):
        raise MessageError(f"unexpected answer from the manager: ({reply.type}) {reply.payload!r}")
    return reply.payload


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _table(rows: list[list[str]], headers: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*headers).rstrip()] + [line.format(*map(str, r)).rstrip() for r in rows]


def _fork_server_line(server: dict | None) -> str:
    if server is None:
        return "warm start off: workers are started cold"
    if server.get("state") == "ready":
        return f"fork server pid {server.get('pid')}: ready, workers start warm"
    return f"fork server {server.get('state')}: workers are started cold meanwhile"


def _job_cell(job: dict) -> str:
    return f"job {job.get('id') or '-'} {job.get('state')}"


def _job_line(job: dict) -> str:
    """A batch job: its state, node and time in the queue."""
    line = f"job {job.get('id') or '(being submitted)'} {job.get('state')}"
    if job.get("reason"):
        line += f" ({job['reason']})"
    if job.get("node"):
        line += f" on {job['node']}"
    waited = _ago(job.get("in queue") or 0)
    line += (
        f", {waited} in the queue so far"
        if job.get("running for") is None
        else f", after {waited} in the queue"
    )
    return f"{line}; output {job.get('output')}"


def render(status: dict[str, Any]) -> str:
    """The status as tables a person reads."""
    out = []
    manager = status.get("manager", {})
    out.append(f"manager pid {manager.get('pid')}, config {manager.get('config file')}")
    out.append(_fork_server_line(manager.get("fork server")))
    out.append("")
    running = status.get("running", [])
    out.append(f"Running workers: {len(running)}")
    if running:
        rows = [
            [
                w["name"],
                " ".join(w["args"]) or "-",
                w["host"],
                _job_cell(w["job"]) if w.get("job") else w["pid"],
                _ago(w["running for"]),
                w["try"],
                f"{w['timeout']}s" if w.get("timeout") else "-",
            ]
            for w in running
        ]
        out += [
            "  " + r
            for r in _table(rows, ["NAME", "ARGS", "HOST", "PID", "RUNNING FOR", "TRY", "TIMEOUT"])
        ]
        out += [f"  {w['name']}: {_job_line(w['job'])}" for w in running if w.get("job")]
    retries = status.get("retries pending", [])
    out.append(f"Retries pending: {len(retries)}")
    if retries:
        rows = [
            [r["module"], " ".join(r["args"]) or "-", r["host"], r["try"], _ago(r["due in"])]
            for r in retries
        ]
        out += ["  " + r for r in _table(rows, ["MODULE", "ARGS", "HOST", "TRY", "DUE IN"])]
    groups = status.get("race groups", [])
    out.append(f"Race-condition groups waiting: {len(groups)}")
    for g in groups:
        waiting = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in g["waiting for"].items())
        then = ", ".join(w["module"] for w in g["then launch"]) or "nothing yet"
        out.append(f"  waiting for {waiting}; then launch {then}")
    recent = status.get("recent messages", [])
    out.append(f"Last {len(recent)} messages:")
    if recent:
        rows = [[_clock(m["time"]), m["source"], m["type"]] for m in reversed(recent)]
        out += ["  " + r for r in _table(rows, ["TIME", "SOURCE", "TYPE"])]
    keys = status.get("checklist keys", [])
    out.append(f"Checklist keys: {', '.join(keys) if keys else '(empty)'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    from nowcast.cli import CommandLineInterface, print_out

    cli = CommandLineInterface("status", package="nowcast", description=__doc__)
    cli.build_parser()
    cli.add_argument("--json", action="store_true", help="Print the status as JSON.")
    cli.add_argument(
        "--timeout",
        type=float,
        default=defaults.STATUS_TIMEOUT,
        help=f"Seconds to wait for the manager; defaults to {defaults.STATUS_TIMEOUT:g}.",
    )
    args = cli.parser.parse_args(argv)
    config = Config()
    try:
        config.load(args.config_file)
        require_zmq(config)
    except (OSError, KeyError, ConfigError) as e:
        print(
            f"nowcast.status: cannot start: {e.args[0] if isinstance(e, KeyError) else e}",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        status = ask(config, args.timeout)
    except MessageError as e:
        print(f"nowcast.status: {e}", file=sys.stderr)
        sys.exit(1)
    if status is None:
        from nowcast.sockets import address

        print(
            f"nowcast.status: no answer from the manager within {args.timeout:g} s through the "
            f"broker at {address(config, 'workers')}. Is the message broker running? Is the "
            f"manager? (supervisorctl status)",
            file=sys.stderr,
        )
        sys.exit(1)
    print_out(json.dumps(status, indent=2) if args.json else render(status))


if __name__ == "__main__":
    main()
