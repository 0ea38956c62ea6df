"""nowcast.worker: exit codes, --debug, giving up without a manager."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import datetime

import pytest
from conftest import wait_for

LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


@pytest.fixture
def workers(system):
    system.worker_module("ok", "return {'fine': True}")
    system.worker_module("fails", "raise WorkerError('no input file')")
    system.worker_module("crashes", "return 1 / 0")
    system.after(
        "".join(
            f"def after_{n}(msg, config, checklist):\n    return []\n"
            for n in ("ok", "fails", "crashes")
        )
    )
    return system


@pytest.mark.timeout(60)
def test_exit_codes_for_success_failure_and_crash(workers):
    workers.start()
    assert workers.run_worker("ok").returncode == 0
    assert workers.run_worker("fails").returncode == 1
    crashed = workers.run_worker("crashes")
    assert crashed.returncode == 3
    assert "ZeroDivisionError" in workers.log()
    checklist = workers.checklist()
    assert checklist["ok"] == {"fine": True}
    assert checklist["fails"] is None and checklist["crashes"] is None


@pytest.mark.timeout(60)
def test_a_worker_speaks_to_a_local_broker_without_zmq(system):
    # ZMTP over a TCP connection of its own: no zmq context, no threads of it
    system.worker_module(
        "plain",
        "import atexit, sys, threading\n"
        "atexit.register(lambda: open('seen', 'w').write(\n"
        "    f\"{'zmq' in sys.modules} {threading.active_count()}\"))\n"
        "return {'ran': True}",
    )
    system.after("def after_plain(msg, config, checklist):\n    return []\n")
    system.start()
    assert system.run_worker("plain").returncode == 0
    assert system.checklist()["plain"] == {"ran": True}
    assert (system.dir / "seen").read_text() == "False 1"


@pytest.mark.timeout(60)
def test_no_manager_gives_up_with_a_clear_line_and_exit_code_4(workers):
    workers.zmq_extra.update({"reply timeout": 0.3, "give up after": 1})
    workers.write()
    result = workers.run_worker("ok")
    assert result.returncode == 4
    assert "no reply from the manager" in workers.log()
    assert "giving up" in workers.log()
    assert "Is the message broker running?" in workers.log()
    # the first try waited its reply timeout (0.3 s) before the second
    started, second = (
        datetime.strptime(re.search(rf"^(\S+ \S+) .*{what}", workers.log(), re.M)[1], LOG_TIME)
        for what in ("running in process", re.escape("(try 2)"))
    )
    assert (second - started).total_seconds() >= 0.25


@pytest.mark.timeout(60)
def test_config_mistakes_exit_2_with_one_line_and_no_traceback(workers, tmp_path):
    workers.write()
    missing = subprocess.run(  # a config file that is not there
        [sys.executable, "-m", "ok", str(tmp_path / "absent.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "absent.yaml" in missing.stderr and "Traceback" not in missing.stderr
    config = workers.config_file.read_text()
    workers.config_file.write_text(
        config.replace(
            "checklist file:", "checklist file: $(NOWCAST.ENV.NOWCAST_UNSET_FOR_TEST)", 1
        )
    )
    unset = workers.run_worker("ok")
    assert unset.returncode == 2
    assert "NOWCAST_UNSET_FOR_TEST" in unset.stderr and "Traceback" not in unset.stderr
    workers.zmq_extra["reply timeout"] = 30
    workers.ports["workers"] = "57x6"
    workers.write()
    bad_port = workers.run_worker("ok", timeout=10)
    assert bad_port.returncode == 2
    assert "'zmq: ports: workers' must be a port number" in bad_port.stderr


@pytest.mark.timeout(60)
def test_debug_sends_nothing(workers):
    import zmq

    # no broker, no manager: --debug must not need them; a socket bound where the
    # broker would be shows whether anything is sent all the same
    workers.zmq_extra.update({"reply timeout": 0.5, "give up after": 1})
    workers.write()
    listener = zmq.Context.instance().socket(zmq.ROUTER)
    listener.setsockopt(zmq.LINGER, 0)
    listener.bind(f"tcp://127.0.0.1:{workers.ports['workers']}")
    try:
        result = workers.run_worker("ok", "--debug")
        arrived = listener.poll(500)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert "**debug mode** message that would have been sent to manager: (success)" in result.stderr
    assert not arrived, "a worker in debug mode sent a message"


@pytest.mark.timeout(60)
def test_a_worker_that_gets_no_reply_in_time_re_sends_the_same_message(system):
    # after_slow takes longer than the worker waits for its reply the first time, so the
    # worker re-sends; the manager must see the same id and apply the message once
    system.zmq_extra.update({"reply timeout": 0.5, "give up after": 30})
    system.worker_module("slow", "return {'run': os.getpid()}")
    system.after(
        """
        import os, time
        def after_slow(msg, config, checklist):
            with open("after.calls", "a") as f:
                f.write(msg.id + "\\n")
            if not os.path.exists("slept"):
                open("slept", "w").close()
                time.sleep(2)
            return []
        """
    )
    system.start()
    result = system.run_worker("slow")
    assert result.returncode == 0, result.stderr
    log = system.log()
    assert "re-sending (success) message (try 2)" in log
    assert log.count("checklist updated with [slow] items from slow worker") == 1
    [applied] = (system.dir / "after.calls").read_text().splitlines()
    assert f"message {applied} from slow was already applied" in log
    assert system.checklist()["slow"]["run"] > 0


@pytest.mark.timeout(60)
def test_an_unregistered_worker_stops_before_any_work(system):
    system.worker_module("stranger", "open('worked', 'w').close()\nreturn {}")
    del system.workers["stranger"]
    system.write()  # no broker or manager: the check comes first
    for debug in ([], ["--debug"]):
        result = system.run_worker("stranger", *debug)
        assert result.returncode == 2
        assert (
            f"{system.config_file}: worker 'stranger' is not registered: no key "
            "'message registry: workers: stranger'"
        ) in result.stderr
        assert "Traceback" not in result.stderr
        assert not (system.dir / "worked").exists()


@pytest.mark.timeout(60)
def test_an_unregistered_need_is_the_same_error_and_code(system):
    system.worker_module("needy", "tell_manager('need', 'x')\nreturn {}")
    system.after("def after_needy(msg, config, checklist):\n    return []\n")
    system.start()
    result = system.run_worker("needy")
    assert result.returncode == 2
    assert (
        f"{system.config_file}: message type 'need' is not registered: no key "
        "'message registry: workers: needy: need'"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert "needy" not in system.checklist()  # nothing was sent


@pytest.mark.timeout(60)
def test_a_payload_without_a_text_form_is_refused_as_a_crash(system):
    system.worker_module("opaque", "return {'files': ['a.nc'], 'handle': object()}")
    system.after("def after_opaque(msg, config, checklist):\n    return []\n")
    system.start()
    result = system.run_worker("opaque")
    assert result.returncode == 3
    assert (
        "cannot report the result: payload key handle holds a builtins.object value, "
        "which has no text form for the checklist"
    ) in result.stderr
    assert system.checklist()["opaque"] is None  # reported as a crash, not as '<object ...>'


def test_the_launch_token_leaves_the_environment_before_the_job_starts(tmp_path):
    """What a worker starts (a model run, a script) must not carry its launch
    token, or its own messages would be taken for the launched worker's."""
    import os
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        "from nowcast import worker\n"
        "sys.argv = ['probe', 'none.yaml']\n"
        "w = worker.NowcastWorker('probe', 'probe', package='')\n"
        "w.init_cli()\n"
        "try:\n"
        "    w.run(lambda *a: None, lambda a: 'success', lambda a: 'failure')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(os.environ.get('NOWCAST_LAUNCH', 'gone'), worker._launch_token())\n"
    )
    env = {**os.environ, "NOWCAST_LAUNCH": "abc123"}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["gone", "abc123"], out.stderr
    # a token that would not fit in a message id (":" separates its parts) is not used
    for bad in ("a:b", "x" * 65):
        env["NOWCAST_LAUNCH"] = bad
        out = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
        )
        gone, token = out.stdout.split()
        assert gone == "gone" and token != bad and token.isalnum(), out.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("give_up_after", [0, 0.5])
def test_the_last_try_waits_only_until_the_give_up_time(workers, give_up_after):
    # the wait is never negative (a negative poll waits for ever), nor longer than
    # what is left of the give-up time (here far less than the reply timeout)
    workers.zmq_extra.update({"reply timeout": 30, "give up after": give_up_after})
    workers.write()  # no broker, no manager
    result = workers.run_worker("ok", timeout=15)
    assert result.returncode == 4 and "giving up" in workers.log()


@pytest.mark.timeout(60)
def test_missing_curve_keys_exit_2_before_any_work(workers, tmp_path):
    workers.worker_module("keyed", "open('worked', 'w').close()\nreturn {}")
    workers.zmq_extra["curve keys"] = str(tmp_path / "no-keys")
    workers.write()
    result = workers.run_worker("keyed")
    assert result.returncode == 2
    assert "key 'zmq: curve keys'" in result.stderr and "Traceback" not in result.stderr
    assert not (workers.dir / "worked").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_job_with_its_exit_code_and_nothing_reported(system, signum, code):
    system.worker_module("busy", "open('started', 'w').close()\ntime.sleep(60)\nreturn {}")
    system.write()
    worker = system.launch_worker("busy")
    wait_for(lambda: (system.dir / "started").exists(), what="the job to start")
    worker.send_signal(signum)
    assert worker.wait(10) == code
    name = signal.Signals(signum).name
    assert f"stopped by signal {name}; nothing more is reported to the manager" in system.log()
    assert "sent message" not in system.log()


@pytest.mark.timeout(60)
def test_a_system_exit_in_the_job_ends_the_worker_with_its_code_and_nothing_sent(system):
    cases = [("quiet", "sys.exit()", 0), ("said", "sys.exit('stop')", 1)]
    for name, call, _ in cases:
        system.worker_module(name, f"{call}\nreturn {{}}")
    system.zmq_extra.update({"reply timeout": 0.2, "give up after": 0.2})
    system.write()  # no broker: a worker that tried to send would exit 4
    for name, call, code in cases:
        result = system.run_worker(name)
        assert result.returncode == code, (call, result.stderr)
    assert system.log().count("nothing reported to the manager") == 2
    assert "giving up" not in system.log()


def test_run_called_from_code_returns_the_exit_code(tmp_path):
    """Only a worker run as a program (``__main__``) exits; called from other
    code, whatever that code's name, ``run`` returns the code."""
    script = tmp_path / "caller.py"
    script.write_text(
        "import sys\n"
        "from nowcast import worker\n"
        "sys.argv = ['probe', 'absent.yaml']\n"
        "code = '''\n"
        "w = worker.NowcastWorker('probe', 'probe', package='')\n"
        "w.init_cli()\n"
        "print('returned', w.run(lambda *a: None, lambda a: 'success', lambda a: 'failure'))\n"
        "'''\n"
        "exec(code, {'__name__': 'Nightly', 'worker': worker})\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["returned", "2"], out.stderr


def test_an_unknown_name_in_the_worker_module_is_an_attribute_error():
    from nowcast import worker

    assert worker.get_web_data.__module__ == "nowcast.web_data"
    for name in ("no_such_name", "zzz", "a"):
        with pytest.raises(AttributeError):
            getattr(worker, name)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "payload, code",
    [
        ("'x' * 60_000", 4),  # under the limit, though over a quarter of it: sent
        ("'\\U0001f600' * 30_000", 6),  # 30,000 characters, but 120,000 bytes: refused
    ],
)
def test_the_size_limit_counts_bytes(workers, payload, code):
    # no broker: a message that is sent gets no reply (exit 4); one refused, 6
    workers.worker_module("big", f"return {{'data': {payload}}}")
    workers.zmq_extra.update({"max message size": 100_000, "reply timeout": 0.2})
    workers.zmq_extra["give up after"] = 0.2
    workers.write()
    assert workers.run_worker("big").returncode == code
