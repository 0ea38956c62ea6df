"""SLURM: ``sbatch --parsable`` to submit, one ``squeue`` for every job watched,
``sacct`` for jobs ``squeue`` has forgotten, ``scancel`` to signal or cancel."""

from __future__ import annotations

from nowcast.batch import BatchSystem, JobStatus, PollError, SubmitError

# States after which a job does not run again (a requeued job goes back to PENDING).
END_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "TIMEOUT",
    }
)

# The fields asked of squeue, in order; the reason comes last as it may hold spaces.
FIELDS = ("JobID", "State", "NodeList", "exit_code", "RestartCnt", "Reason")
SEPARATOR = "|"


class Slurm(BatchSystem):
    kind = "slurm"
    directive = "#SBATCH"
    job_id_variable = "SLURM_JOB_ID"
    reserved_options = ("--job-name", "-J", "--output", "-o", "--chdir", "-D", "--parsable")

    def directives(
        self, name: str, output: str, chdir: str | None, options: list[str]
    ) -> list[str]:
        lines = [f"#SBATCH --job-name={name}", f"#SBATCH --output={output}"]
        if chdir:
            lines.append(f"#SBATCH --chdir={chdir}")
        lines += [f"#SBATCH {option}" for option in options]
        return lines

    def submit_command(self, script: str) -> list[str]:
        return ["sbatch", "--parsable", script]

    def read_submit(self, returncode: int, stdout: str, stderr: str) -> str:
        # --parsable prints "id" or "id;cluster"
        words = stdout.strip().split(";")[0].split()
        if returncode == 0 and len(words) == 1 and words[0].isdigit():
            return words[0]
        said = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
        raise SubmitError(said or f"sbatch exited with code {returncode} and printed {stdout!r}")

    def poll_command(self, job_ids: list[str]) -> list[str]:
        fields = ",".join(f"{field}:{SEPARATOR}" for field in FIELDS)
        return ["squeue", "--noheader", "--states=all", "--jobs=" + ",".join(job_ids), "-O", fields]

    def read_poll(self, returncode: int, stdout: str, stderr: str) -> dict[str, JobStatus]:
        if returncode != 0:
            if "Invalid job id" in stderr:  # squeue's answer when it knows none of them
                return {}
            raise PollError(_said(stderr) or f"squeue exited with code {returncode}")
        jobs = {}
        for line in stdout.splitlines():
            parts = line.split(SEPARATOR, len(FIELDS) - 1)
            if len(parts) < len(FIELDS) or not parts[0].strip():
                continue
            job_id, state, node, status, restarts, reason = (p.strip() for p in parts)
            state = state.split()[0] if state else "UNKNOWN"
            exit_code, signal = _wait_status(status)
            jobs[job_id] = JobStatus(
                job_id,
                state,
                state in END_STATES,
                node if node not in ("", "(null)") else "",
                reason if reason not in ("None", "(null)") else "",
                exit_code,
                signal,
                int(restarts) if restarts.isdigit() else 0,
            )
        return jobs

    def history_command(self, job_ids: list[str]) -> list[str] | None:
        return [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            "--jobs=" + ",".join(job_ids),
            "--format=JobID,State,ExitCode,NodeList",
        ]

    def read_history(self, returncode: int, stdout: str, stderr: str) -> dict[str, JobStatus]:
        if returncode != 0:
            raise PollError(_said(stderr) or f"sacct exited with code {returncode}")
        jobs = {}
        for line in stdout.splitlines():
            parts = line.split("|")
            if len(parts) < 4:
                continue
            job_id, state, code, node = (p.strip() for p in parts[:4])
            state = state.split()[0] if state else "UNKNOWN"  # "CANCELLED by 0"
            exit_code, signal = _code_signal(code)
            jobs[job_id] = JobStatus(
                job_id, state, state in END_STATES, node, "", exit_code, signal
            )
        return jobs

    def find_command(self, name: str) -> list[str]:
        return ["squeue", "--noheader", "--states=all", f"--name={name}", "-O", "JobID"]

    def read_find(self, returncode: int, stdout: str, stderr: str) -> list[str]:
        if returncode != 0:
            raise PollError(_said(stderr) or f"squeue exited with code {returncode}")
        return [word for word in stdout.split() if word.isdigit()]

    def cancel_command(self, job_id: str, signal: str | None = None) -> list[str]:
        if signal:  # the batch script and every process of the job, not only its steps
            return ["scancel", "--full", f"--signal={signal}", job_id]
        return ["scancel", job_id]


def _said(stderr: str) -> str:
    return " ".join(line.strip() for line in stderr.splitlines() if line.strip())[-500:]


def _wait_status(text: str) -> tuple[int | None, int | None]:
    """squeue's exit_code is a wait status: the exit code times 256, or the signal."""
    if not text.isdigit():
        return None, None
    status = int(text)
    if status & 0x7F:
        return None, status & 0x7F
    return status >> 8, None


def _code_signal(text: str) -> tuple[int | None, int | None]:
    """sacct's ExitCode, ``code:signal``."""
    code, _, signal = text.partition(":")
    if not code.isdigit():
        return None, None
    if signal.isdigit() and int(signal):
        return None, int(signal)
    return int(code), None
