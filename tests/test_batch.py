"""Workers as SLURM batch jobs, on a real single-node SLURM cluster started for
the session (munged, slurmctld, slurmd; see nowcast.batch.local_cluster)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PY, wait_for
from test_remote import remote_host, sshd  # noqa: F401 (a fixture)

from nowcast.batch import JobStatus, PollError, SubmitError
from nowcast.batch.slurm import Slurm

AFTER = """
import json

def after_start(msg, config, checklist):
    return [NextWorker('middle', host='cluster')]

def after_middle(msg, config, checklist):
    with open('after_middle.log', 'a') as f:
        f.write(json.dumps([msg.type, msg.payload]) + '\\n')
    return [NextWorker('end')] if msg.type == 'success' else []

def after_end(msg, config, checklist):
    return []
"""

REPORT_JOB = "return {'job': os.environ.get('SLURM_JOB_ID'), 'pid': os.getpid()}"


def chain(system, middle: str = REPORT_JOB, host: dict | None = None, **settings) -> None:
    """start -> middle (a batch job on host 'cluster') -> end."""
    system.worker_module("start")
    system.worker_module("middle", middle, **settings)
    system.worker_module("end")
    system.after(AFTER)
    system.config_extra["run"] = {
        "enabled hosts": {
            "cluster": {"batch": "slurm", "poll interval": 1, "sbatch options": ["--mem=50M"]}
            | (host or {})
        }
    }


def after_middle(system) -> list:
    path = system.dir / "after_middle.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_after_middle(system, timeout: float = 60) -> list:
    return wait_for(lambda: after_middle(system), timeout=timeout, what="after_middle")[0]


def job_ids(system) -> list[str]:
    return re.findall(r"middle submitted to cluster as job (\d+)", system.log())


def submitted(system, count: int) -> list[str]:
    """The ids of the ``count`` jobs submitted, once the log has them all: a job
    can run and its worker report before the manager has seen sbatch's answer."""

    def found() -> list[str] | None:
        ids = job_ids(system)
        return ids if len(ids) >= count else None

    return wait_for(found, what=f"{count} job id(s) in the log")


def squeue(slurm, job_id: str, field: str = "State") -> str:
    return subprocess.run(
        ["squeue", "-h", "--states=all", "-j", job_id, "-O", field],
        env=slurm,
        capture_output=True,
        text=True,
    ).stdout.strip()


def output(system) -> str:
    return "".join(p.read_text() for p in (system.dir / "jobs").glob("middle-*.out"))


def job_running(slurm, system) -> str:
    """The id of the middle job once it runs on the node."""
    job = wait_for(lambda: job_ids(system), timeout=30, what="the job's submission")[0]
    wait_for(lambda: squeue(slurm, job) == "RUNNING", timeout=30, what=f"job {job} running")
    return job


def sleeping_job(system, slurm) -> str:
    """Start the chain with a middle job that prints a line and sleeps a minute;
    its id once it runs and has printed."""
    chain(system, "print('about to sleep', flush=True)\ntime.sleep(60)")
    system.start()
    assert system.run_worker("start").returncode == 0
    job = job_running(slurm, system)
    wait_for(lambda: "about to sleep" in output(system), what="the worker's output")
    return job


@pytest.mark.timeout(90)
def test_a_chain_with_its_middle_worker_as_a_batch_job(system, slurm):
    chain(system)
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "end" in system.checklist(), timeout=60, what="the end of the chain")
    msg_type, payload = after_middle(system)[0]
    assert msg_type == "success"
    (job,) = submitted(system, 1)
    assert payload["job"] == job  # it ran as that job, on the node
    scripts = list((system.dir / "jobs").glob("middle-*-try1-*.sh"))
    assert len(scripts) == 1
    text = scripts[0].read_text()
    assert "#SBATCH --mem=50M" in text and f"-m middle {system.config_file}" in text
    # the run history names the job the worker ran as (issue: "pid or job id")
    db = sqlite3.connect(f"{system.checklist_file}.history.sqlite")
    try:
        rows = db.execute("SELECT outcome, host, job_id FROM runs WHERE worker='middle'").fetchall()
    finally:
        db.close()
    assert rows == [("success", "cluster", job)]
    # the job's record is gone once it ended; nothing is left to follow
    wait_for(
        lambda: not list(system.dir.glob("checklist.yaml.manager-jobs/*.json")),
        timeout=30,
        what="the submission record removed",
    )


@pytest.mark.timeout(90)
def test_a_job_cancelled_from_outside_is_a_crash_with_its_state(system, slurm):
    job = sleeping_job(system, slurm)
    subprocess.run(["scancel", job], env=slurm, check=True)
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash"
    assert payload["job id"] == job and payload["state"] == "CANCELLED"
    assert "about to sleep" in payload["output"]
    line = next(line for line in system.log().splitlines() if "handling it as a crash" in line)
    assert f"job {job} ended CANCELLED" in line and "its output ends: about to sleep" in line


@pytest.mark.timeout(90)
def test_a_job_whose_output_cannot_be_read_says_so_in_its_crash(system, slurm):
    job = sleeping_job(system, slurm)
    for path in (system.dir / "jobs").glob("middle-*.out"):
        path.unlink()  # taken away (a full scratch disk cleaned, a quota): the job runs on
    subprocess.run(["scancel", job], env=slurm, check=True)
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash" and payload["state"] == "CANCELLED"
    assert payload["output"] == "" and payload["output unread"] == "No such file or directory"
    line = next(line for line in system.log().splitlines() if "handling it as a crash" in line)
    assert f"its output could not be read ({payload['output file']}: No such file" in line


@pytest.mark.timeout(120)
def test_a_job_on_a_host_a_reload_took_out_is_still_followed_to_its_end(system, slurm):
    job = sleeping_job(system, slurm)
    del system.config_extra["run"]  # the host 'cluster' taken out of the config
    system.write()
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in system.log(), what="the reload")
    assert "batch host cluster is no longer in the config" in system.log()
    # the job ends without reporting: the manager still polls the host and sees it
    subprocess.run(["scancel", job], env=slurm, check=True)
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash"
    assert payload["job id"] == job and payload["state"] == "CANCELLED"
    wait_for(
        lambda: "batch host cluster, no longer in the config, has no job left" in system.log(),
        what="the host forgotten",
    )


@pytest.mark.timeout(120)
def test_a_job_on_a_host_gone_from_the_config_at_a_restart_ends_as_unknown(system, slurm):
    job = sleeping_job(system, slurm)
    system.kill_manager()
    del system.config_extra["run"]
    system.write()
    system.start_manager()
    # nothing can follow the job any more: it is ended, saying why, never left hanging
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash"
    assert payload == {"job id": job, "state": "UNKNOWN"}
    assert "which is no longer a batch host in the config" in system.log()
    subprocess.run(["scancel", job], env=slurm, check=True)


@pytest.mark.timeout(120)
def test_a_job_over_its_slurm_time_limit_is_a_crash_with_timeout(system, slurm):
    chain(system, "time.sleep(300)", **{"sbatch options": ["--time=0:01"]})
    system.start()
    assert system.run_worker("start").returncode == 0
    msg_type, payload = wait_after_middle(system, timeout=110)
    assert msg_type == "crash" and payload["state"] == "TIMEOUT"


@pytest.mark.timeout(90)
def test_a_worker_timeout_shorter_than_the_job_cancels_it(system, slurm):
    chain(
        system,
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(9)))\n"
        "time.sleep(120)",
        timeout=4,
        **{"timeout grace": 2},
    )
    system.start()
    assert system.run_worker("start").returncode == 0
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash"
    assert payload["state"] in ("CANCELLED", "FAILED")
    assert "got SIGTERM" in payload["output"]  # signalled first, with a grace
    assert "ran past its timeout of 4 s" in system.log()
    assert "sending it SIGTERM" in system.log()


@pytest.mark.timeout(90)
def test_a_job_asking_for_more_memory_than_the_node_has_is_refused_at_submit(system, slurm):
    chain(system, **{"sbatch options": ["--mem=100000000M"]})
    system.start()
    assert system.run_worker("start").returncode == 0
    msg_type, payload = wait_after_middle(system)
    assert msg_type == "crash" and payload["state"] == "REFUSED"
    said = payload["submit error"]
    assert "sbatch: error:" in said and re.search(r"[Mm]emory", said), said
    assert job_ids(system) == []
    assert "could not be submitted to cluster: sbatch: error:" in system.log()


@pytest.mark.timeout(120)
def test_retries_submit_the_job_again(system, slurm):
    chain(
        system,
        "if not os.path.exists('tried'):\n    open('tried', 'w').close()\n    os._exit(7)\n"
        + REPORT_JOB,
        retries=1,
    )
    system.start()
    assert system.run_worker("start").returncode == 0
    msg_type, payload = wait_after_middle(system, timeout=90)
    assert msg_type == "success"
    first, second = submitted(system, 2)
    assert payload["job"] == second != first
    assert len(list((system.dir / "jobs").glob("middle-*-try2-*.sh"))) == 1
    assert f"job {first} ended FAILED (exit code 7)" in system.log()


@pytest.mark.timeout(120)
def test_a_job_requeued_by_slurm_is_followed_not_counted_as_a_try(system, slurm):
    chain(
        system,
        "if os.environ['SLURM_RESTART_COUNT'] == '0' if 'SLURM_RESTART_COUNT' in os.environ else True:\n"
        "    time.sleep(60)\n"
        "return {'job': os.environ.get('SLURM_JOB_ID'), 'restarts': os.environ.get('SLURM_RESTART_COUNT')}",
        retries=1,
    )
    system.start()
    assert system.run_worker("start").returncode == 0
    job = job_running(slurm, system)
    subprocess.run(["scontrol", "requeue", job], env=slurm, check=True)
    # SLURM holds a requeued job two minutes before it may start again: not here.
    # Its start time is moved again while it is pending: an update made before
    # SLURM has finished requeuing it can be undone by the requeue's own hold
    wait_for(lambda: squeue(slurm, job) == "PENDING", timeout=20, what="the job requeued")
    # ...but not within the second of the requeue: slurmd refuses a credential made in
    # the second its previous one was revoked ("Job credential revoked") and SLURM
    # then ends the job FAILED, which is what its own hold is there to avoid
    time.sleep(2)

    def reported() -> list:
        if squeue(slurm, job) == "PENDING":
            subprocess.run(
                ["scontrol", "update", f"jobid={job}", "StartTime=now"],
                env=slurm,
                capture_output=True,
            )
        return after_middle(system)

    msg_type, payload = wait_for(reported, timeout=60, what="after_middle")[0]
    assert (msg_type, payload) == ("success", {"job": job, "restarts": "1"})
    assert job_ids(system) == [job]
    assert f"job {job} of middle was requeued by cluster (restart 1)" in system.log()
    assert not list((system.dir / "jobs").glob("middle-*-try2-*"))


@pytest.mark.timeout(90)
def test_a_job_past_its_queue_timeout_is_cancelled_and_a_crash(system, slurm):
    chain(system, **{"sbatch options": ["--begin=now+120"], "queue timeout": 2})
    system.start()
    assert system.run_worker("start").returncode == 0
    msg_type, payload = wait_after_middle(system)
    assert (msg_type, payload["state"]) == ("crash", "CANCELLED")
    (job,) = submitted(system, 1)
    line = next(line for line in system.log().splitlines() if "handling it as a crash" in line)
    assert "waited in the queue past its queue timeout of 2 s and was cancelled" in line
    assert f"job {job} ended CANCELLED" in line


def test_a_recorded_submission_missing_from_the_state_is_followed_not_submitted(tmp_path):
    """The manager died after recording a submission (and maybe running sbatch) but
    before its state held the job: the new manager takes the launch out of its
    pending launches and follows the job."""
    import logging

    from nowcast.batch.jobs import BatchJobs
    from nowcast.worker import NextWorker

    jobs = BatchJobs(str(tmp_path / "checklist.yaml"), logging.getLogger("test"))
    worker = NextWorker("middle", ["--x", "1"], "cluster")
    job = {"id": "42", "token": "abcd1234", "name": "middle.abcd1234", "state": "SUBMITTING"}
    record = {"worker": {"module": "middle", "args": ["--x", "1"], "host": "cluster"}}
    jobs._save("abcd1234", {**record, "tries": 2, "submitted": 1.0, "job": job})
    stray = {**job, "id": "43", "token": "ffff0000"}
    jobs._save("ffff0000", {**record, "tries": 1, "submitted": 1.0, "job": stray})
    other = NextWorker("middle", ["--x", "2"], "cluster")
    pending = [(other, 2), (worker, 2)]
    running = []
    assert jobs.reattach(pending, running, {"middle": {"timeout": 60, "queue timeout": 5}})
    assert pending == [(other, 2)]
    (launched,) = running
    assert (launched.job["id"], launched.job["state"], launched.tries) == ("42", "PENDING", 2)
    assert (launched.timeout, launched.queue_timeout, launched.pid) == (60, 5, None)
    # a record neither the state nor a pending launch knows is dropped, not followed
    assert sorted(p.name for p in (tmp_path / "checklist.yaml.manager-jobs").iterdir()) == [
        "abcd1234.json"
    ]


@pytest.mark.timeout(90)
def test_nowcast_status_shows_the_job(system, slurm):
    job = sleeping_job(system, slurm)

    def shown():
        out = subprocess.run(
            [PY, "-m", "nowcast.status", str(system.config_file), "--json"],
            capture_output=True,
            text=True,
        ).stdout
        running = json.loads(out)["running"]
        return running and running[0].get("job", {}).get("state") == "RUNNING" and running[0]

    entry = wait_for(shown, timeout=20, what="the job RUNNING in the status")
    assert entry["job"]["id"] == job and entry["job"]["node"]
    assert entry["job"]["in queue"] >= 0
    text = subprocess.run(
        [PY, "-m", "nowcast.status", str(system.config_file)], capture_output=True, text=True
    ).stdout
    assert f"job {job} RUNNING" in text
    subprocess.run(["scancel", job], env=slurm)


def jobs_of(slurm, system) -> list[str]:
    """The ids of every job the cluster knows that runs in this test's directory."""
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-O", "JobID:|,WorkDir:|,Name"],
        env=slurm,
        capture_output=True,
        text=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines()]
    return [
        r[0] for r in rows if len(r) > 2 and r[1] == str(system.dir) and r[2].startswith("middle.")
    ]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("when", ["submitting", "pending", "running"])
def test_a_manager_killed_while_its_job_waits_or_runs_follows_it_and_submits_once(
    system, slurm, when, monkeypatch
):
    chain(system, "time.sleep(3)\n" + REPORT_JOB, **{"sbatch options": ["--begin=now+6"]})
    if when == "submitting":  # an sbatch that takes 2 s, so the manager dies while it runs
        bin_dir = system.dir / "bin"
        bin_dir.mkdir()
        (bin_dir / "sbatch").write_text(f'#!/bin/sh\nsleep 2\nexec {shutil.which("sbatch")} "$@"\n')
        (bin_dir / "sbatch").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    system.start()
    assert system.run_worker("start").returncode == 0
    if when == "submitting":
        wait_for(lambda: "submitting NextWorker" in system.log(), what="the submission")
    elif when == "pending":
        job = wait_for(lambda: job_ids(system), timeout=30, what="the job id")[0]
        assert squeue(slurm, job) == "PENDING"
    else:
        job_running(slurm, system)
    system.kill_manager()
    system.start_manager()
    wait_for(lambda: "end" in system.checklist(), timeout=60, what="the end of the chain")
    msg_type, payload = after_middle(system)[0]
    assert msg_type == "success"
    assert jobs_of(slurm, system) == [payload["job"]]  # submitted exactly once
    assert len(after_middle(system)) == 1
    # the state file the killed manager wrote, with a job in it, was taken whole
    assert list(system.dir.glob("*.unreadable-*")) == []


@pytest.mark.timeout(120)
def test_jobs_submitted_through_ssh_to_a_login_node(system, slurm_cluster, sshd):  # noqa: F811
    """sbatch, squeue, scancel run on the "login node" (this machine, through a real
    sshd); the job's script and output live in its jobs directory. Only the login
    node's environment names the cluster (SLURM_CONF)."""
    slurm = slurm_cluster
    assert "SLURM_CONF" not in os.environ
    envvars = system.dir / "login-env.sh"
    envvars.write_text(
        f"export SLURM_CONF={slurm['SLURM_CONF']}\nexport PYTHONPATH={system.dir}\ncd {system.dir}\n"
    )
    login = remote_host(system, sshd)
    login["envvars"] = str(envvars)
    del login["port"]
    login["ssh options"] = ["-p", str(sshd["port"]), *login["ssh options"]]
    login["jobs directory"] = str(system.dir / "login-jobs")
    chain(system, "time.sleep(float(open('sleep').read()))\n" + REPORT_JOB, host=login)
    (system.dir / "sleep").write_text("0")
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "end" in system.checklist(), timeout=60, what="the end of the chain")
    (job,) = submitted(system, 1)
    assert after_middle(system)[0] == [
        "success",
        {"job": job, "pid": after_middle(system)[0][1]["pid"]},
    ]
    assert len(list((system.dir / "login-jobs").glob("middle-*-try1-*.sh"))) == 1
    # a job cancelled on the cluster: its state and output come back through ssh too
    (system.dir / "sleep").write_text("60")
    (system.dir / "after_middle.log").unlink()
    assert system.run_worker("start").returncode == 0
    job = wait_for(lambda: job_ids(system)[1:], timeout=30, what="the second job")[0]
    wait_for(lambda: squeue(slurm, job) == "RUNNING", timeout=30, what=f"job {job} running")
    subprocess.run(["scancel", job], env=slurm, check=True)
    msg_type, payload = wait_after_middle(system)
    assert (msg_type, payload["state"], payload["job id"]) == ("crash", "CANCELLED", job)
    assert f"JOB {job} ON" in payload["output"]


# reading SLURM's output (no cluster needed)


def refusing_ssh(system, monkeypatch, word: str, times: int) -> Path:
    """Put an ``ssh`` first on the PATH that fails as a refused connection (exit
    255) the first ``times`` times it is asked to run a command with ``word`` in
    it; return the file that counts the refusals, a line each."""
    bin_dir = system.dir / "bin"
    bin_dir.mkdir()
    refused = system.dir / f"refused-{word}"
    refused.touch()
    (bin_dir / "ssh").write_text(
        "#!/bin/sh\n"
        f'case "$*" in *{word}*) if [ "$(wc -l < {refused})" -lt {times} ]; then '
        f"echo x >> {refused}; "
        'echo "ssh: connect to host 127.0.0.1: Connection refused" >&2; exit 255; fi;; esac\n'
        f'exec {shutil.which("ssh")} "$@"\n'
    )
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return refused


def login_chain(system, slurm, sshd, middle: str, **settings) -> str:  # noqa: F811
    """start -> middle (a batch job submitted through ssh to a login node) -> end,
    started; the job's id once it runs."""
    envvars = system.dir / "login-env.sh"
    envvars.write_text(f"export SLURM_CONF={slurm['SLURM_CONF']}\ncd {system.dir}\n")
    login = remote_host(system, sshd)
    login["envvars"] = str(envvars)
    del login["port"]
    login["ssh options"] = ["-p", str(sshd["port"]), *login["ssh options"]]
    login["jobs directory"] = str(system.dir / "login-jobs")
    chain(system, middle, host=login, **settings)
    system.start()
    assert system.run_worker("start").returncode == 0
    job = wait_for(lambda: job_ids(system), timeout=30, what="the job")[0]
    wait_for(lambda: squeue(slurm, job) == "RUNNING", timeout=30, what=f"job {job} running")
    return job


REFUSED = "through ssh: ssh: connect to host 127.0.0.1: Connection refused; trying again"


@pytest.mark.timeout(120)
def test_an_output_read_that_ssh_fails_is_tried_again(
    system,
    slurm_cluster,
    sshd,  # noqa: F811
    monkeypatch,
):
    """ssh refused once when the manager reads the end of a cancelled job's output:
    it reads it again, and the crash has the output's last lines."""
    slurm = slurm_cluster
    refused = refusing_ssh(system, monkeypatch, "tail", 1)
    job = login_chain(system, slurm, sshd, "time.sleep(60)")
    subprocess.run(["scancel", job], env=slurm, check=True)
    msg_type, payload = wait_after_middle(system)
    assert refused.read_text() == "x\n"  # ssh did refuse the first read
    assert (msg_type, payload["state"]) == ("crash", "CANCELLED")
    assert f"JOB {job} ON" in payload["output"]
    assert "output unread" not in payload
    assert f"{REFUSED} (try 2 of 3)" in system.log()


@pytest.mark.timeout(120)
def test_a_cancel_that_ssh_fails_is_tried_again(
    system,
    slurm_cluster,
    sshd,  # noqa: F811
    monkeypatch,
):
    """ssh refused twice when the manager cancels a job past its timeout: the
    third try signals it, so the job still gets its SIGTERM and its grace."""
    slurm = slurm_cluster
    refused = refusing_ssh(system, monkeypatch, "scancel", 2)
    login_chain(
        system,
        slurm,
        sshd,
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(9)))\n"
        "time.sleep(120)",
        timeout=4,
        **{"timeout grace": 30},
    )
    msg_type, payload = wait_after_middle(system)
    assert refused.read_text() == "x\nx\n"
    assert msg_type == "crash" and "got SIGTERM" in payload["output"]
    assert f"{REFUSED} (try 3 of 3)" in system.log()


def test_squeue_output_is_read_into_job_states():
    out = (
        "12|RUNNING|n1|0|0|None\n"
        "13|PENDING||0|0|Resources\n"
        "14|FAILED|n1|768|0|NonZeroExitCode\n"
        "15|CANCELLED|n1|15|0|None\n"
        "16|PENDING||0|2|BeginTime\n"
    )
    jobs = Slurm().read_poll(0, out, "")
    assert jobs["12"] == JobStatus("12", "RUNNING", False, "n1", "", 0, None, 0)
    assert jobs["13"].reason == "Resources" and not jobs["13"].ended
    assert (jobs["14"].ended, jobs["14"].exit_code, jobs["14"].signal) == (True, 3, None)
    assert (jobs["15"].exit_code, jobs["15"].signal) == (None, 15)
    assert jobs["16"].restarts == 2
    assert Slurm().read_poll(1, "", "slurm_load_jobs error: Invalid job id specified") == {}
    with pytest.raises(PollError, match="Unable to contact"):
        Slurm().read_poll(1, "", "squeue: error: Unable to contact slurm controller")


def test_sbatch_output_is_read_into_a_job_id_or_its_error():
    assert Slurm().read_submit(0, "123\n", "") == "123"
    assert Slurm().read_submit(0, "124;cluster\n", "") == "124"
    with pytest.raises(SubmitError, match="Requested node configuration"):
        Slurm().read_submit(
            1, "", "sbatch: error: Batch job submission failed: Requested node configuration"
        )


@pytest.mark.timeout(30)
def test_a_bad_batch_setting_is_refused_naming_the_key(system):
    system.worker_module("start")
    system.config_extra["run"] = {
        "enabled hosts": {"cluster": {"batch": "slurm", "sbatch options": "--mem=1G"}}
    }
    system.write()
    result = subprocess.run(
        [PY, "-m", "nowcast.manager", str(system.config_file)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0
    assert "run: enabled hosts: cluster: sbatch options" in result.stderr
    assert "'--mem=1G'" in result.stderr
    system.config_extra["run"] = {"enabled hosts": {"cluster": {"batch": "pbs"}}}
    system.write()
    result = subprocess.run(
        [PY, "-m", "nowcast.manager", str(system.config_file)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "run: enabled hosts: cluster: batch" in result.stderr and "'pbs'" in result.stderr
    system.config_extra["run"] = {"enabled hosts": {"cluster": {"batch": "slurm"}}}
    system.workers["start"]["sbatch options"] = ["--output=/tmp/x"]
    system.write()
    result = subprocess.run(
        [PY, "-m", "nowcast.manager", str(system.config_file)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "message registry: workers: start: sbatch options" in result.stderr
    assert "'--output=/tmp/x' is set by the manager" in result.stderr
