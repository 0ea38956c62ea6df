"""Workers as batch jobs on a cluster: what each batch system provides.

A batch system is spoken to through its own commands (``sbatch``, ``squeue``,
``scancel`` for SLURM), run here or on a login node over ssh. A ``BatchSystem``
says which commands to run and how to read what they print; it runs nothing
itself, so the manager can run the commands without waiting on them, and tests
can read real output without a cluster. One module per kind: ``slurm`` now.

The manager's side (job scripts, submission records, polling, time-outs) is in
``nowcast.batch.jobs``; host settings in ``nowcast.batch.hosts``.
"""

from __future__ import annotations

import attrs

from nowcast.errors import NowcastError


class SubmitError(NowcastError):
    """The batch system refused a job; the message is its own."""


class PollError(NowcastError):
    """The batch system could not be asked about its jobs (controller down, ...)."""


@attrs.frozen
class JobStatus:
    """One job as the batch system reports it."""

    job_id: str
    state: str  # the batch system's own word: PENDING, RUNNING, COMPLETED, FAILED, ...
    ended: bool  # whether the job has ended for good (a requeued job has not)
    node: str = ""
    reason: str = ""  # why it waits, or why it ended, when the batch system says
    exit_code: int | None = None  # the job script's exit code, when it exited
    signal: int | None = None  # the signal that killed it, when one did
    restarts: int = 0  # how many times the batch system requeued it


class BatchSystem:
    """The commands of one kind of batch system, and how to read their output."""

    kind = ""
    directive = "#"  # the prefix of option lines in a job script
    job_id_variable = ""  # the environment variable holding the job id on the node
    reserved_options: tuple[str, ...] = ()  # options the manager sets itself

    def directives(
        self, name: str, output: str, chdir: str | None, options: list[str]
    ) -> list[str]:
        """The option lines of a job script: its name, its output file, where it runs, and
        the configured options (later ones override earlier ones)."""
        raise NotImplementedError

    def submit_command(self, script: str) -> list[str]:
        """The command that submits ``script`` and prints the job id."""
        raise NotImplementedError

    def read_submit(self, returncode: int, stdout: str, stderr: str) -> str:
        """The job id from the submit command's output; ``SubmitError`` with the
        batch system's own message when it refused."""
        raise NotImplementedError

    def poll_command(self, job_ids: list[str]) -> list[str]:
        """One command that reports on every job in ``job_ids``."""
        raise NotImplementedError

    def read_poll(self, returncode: int, stdout: str, stderr: str) -> dict[str, JobStatus]:
        """The jobs the poll command reported on (jobs it no longer knows are absent);
        ``PollError`` when it could not ask."""
        raise NotImplementedError

    def history_command(self, job_ids: list[str]) -> list[str] | None:
        """A command for jobs the poll no longer reports (ended long ago), or None."""
        return None

    def read_history(self, returncode: int, stdout: str, stderr: str) -> dict[str, JobStatus]:
        return {}

    def find_command(self, name: str) -> list[str]:
        """A command that prints the ids of the jobs named ``name``."""
        raise NotImplementedError

    def read_find(self, returncode: int, stdout: str, stderr: str) -> list[str]:
        raise NotImplementedError

    def cancel_command(self, job_id: str, signal: str | None = None) -> list[str]:
        """The command that cancels a job, or with ``signal`` only signals it."""
        raise NotImplementedError


def system(kind: str) -> BatchSystem:
    """The batch system called ``kind`` (``slurm``); KeyError for an unknown one."""
    if kind == "slurm":
        from nowcast.batch.slurm import Slurm

        return Slurm()
    raise KeyError(kind)


KINDS = ("slurm",)
