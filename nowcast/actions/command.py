"""The ``command`` action: run a program with the event in its environment and
as JSON on its standard input."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess

from nowcast import defaults
from nowcast.actions import positive_number
from nowcast.errors import ConfigError
from nowcast.events import ActionError, Event, digest_fields, digest_text


class CommandAction:
    kind = "command"

    def __init__(self, argv: list[str], timeout: float) -> None:
        self.argv = argv
        self.timeout = timeout
        self.target = shlex.join(argv)

    @classmethod
    def from_config(cls, item: dict, where: str) -> CommandAction:
        value = item["command"]
        argv = shlex.split(value) if isinstance(value, str) else value
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in argv)
        ):
            raise ConfigError(
                f"{where} must be a program and its arguments, as a list or a string, got {value!r}"
            )
        timeout_where = where.replace(": command'", ": timeout'")
        timeout = positive_number(
            item.get("timeout"), timeout_where, defaults.EVENT_COMMAND_TIMEOUT
        )
        return cls([str(a) for a in argv], timeout)

    def send(self, events: list[Event]) -> str:
        fields = digest_fields(events)
        env = dict(os.environ)
        env.update(
            {
                "NOWCAST_EVENT": str(fields["event"]),
                "NOWCAST_EVENT_COUNT": str(len(events)),
                "NOWCAST_WORKER": str(fields.get("worker") or ""),
                "NOWCAST_RUN": str(fields.get("run") or ""),
                "NOWCAST_TIME": events[-1].fields()["time_iso"],
                "NOWCAST_SUMMARY": digest_text(events),
            }
        )
        data = json.dumps(fields, ensure_ascii=False, default=str).encode("utf-8")
        try:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise ActionError(f"cannot run {self.argv[0]}: {e}") from None
        try:
            out, _ = process.communicate(data, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.communicate()
            raise ActionError(f"still running after {self.timeout:g} s; killed") from None
        said = out.decode("utf-8", "replace").strip()[-500:]
        if process.returncode != 0:
            raise ActionError(
                f"exited with code {process.returncode}" + (f": {said}" if said else "")
            )
        return "exit code 0" + (f": {said}" if said else "")
