"""The nemo_nowcast package, and a system package of its own named nowcast.

NEMO_Nowcast systems import ``nemo_nowcast``, and their own package is itself
named ``nowcast``; both must work beside this distribution, unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
from conftest import PY


def run(code: str, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, *args] if not code else [PY, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_nemo_nowcast_modules_are_nowcast_modules():
    import nemo_nowcast.workers.sleep

    import nemo_nowcast
    import nowcast
    import nowcast.worker
    import nowcast.workers.sleep
    from nemo_nowcast import NowcastWorker, worker

    assert worker is nowcast.worker and NowcastWorker is nowcast.worker.NowcastWorker
    assert sys.modules["nemo_nowcast.worker"] is sys.modules["nowcast.worker"]
    assert nemo_nowcast.workers.sleep is nowcast.workers.sleep
    assert nowcast.worker.__spec__.name == "nowcast.worker"  # the module keeps its own spec
    # submodules are attributes of both packages, as NEMO_Nowcast's are
    assert nemo_nowcast.cli.CommandLineInterface.arrow_date("2026-11-24").year == 2026
    assert nowcast.fileutils.FilePerms is nemo_nowcast.fileutils.FilePerms
    from nemo_nowcast.worker import get_web_data

    assert nemo_nowcast.get_web_data is get_web_data is nowcast.get_web_data
    with pytest.raises(AttributeError):
        nemo_nowcast.no_such_name  # noqa: B018


def test_mock_patch_of_a_nemo_nowcast_name_patches_nowcast():
    import nowcast.worker

    with mock.patch("nemo_nowcast.worker.Config", autospec=True) as patched:
        assert nowcast.worker.Config is patched
    assert nowcast.worker.Config is sys.modules["nowcast.config"].Config


def test_example_next_workers_under_nemo_name():
    from nemo_nowcast import Message, NextWorker, next_workers

    assert next_workers.after_sleep(Message("sleep", "success"), None, {}) == [
        NextWorker("nemo_nowcast.workers.awaken")
    ]
    assert next_workers.after_sleep(Message("sleep", "crash"), None, {}) == []


def test_python_m_nemo_nowcast_modules(tmp_path):
    for module, expected in (
        ("nemo_nowcast.manager", "python -m nowcast.manager"),
        ("nemo_nowcast.message_broker", "python -m nowcast.message_broker"),
        ("nemo_nowcast.workers.sleep", "python -m nowcast.workers.sleep"),
    ):
        result = run("", tmp_path, "-m", module, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {expected}"), result.stdout


def make_system(root: Path, init: str = '"""A nowcast system."""\n') -> Path:
    """A system package named nowcast, NEMO_Nowcast's way, in ``root``."""
    package = root / "nowcast"
    (package / "workers").mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (package / "workers" / "__init__.py").write_text("")
    (package / "lib.py").write_text("def answer():\n    return 42\n")
    (package / "next_workers.py").write_text(
        "from nemo_nowcast import NextWorker\n\n"
        "def after_download_x(msg, config, checklist):\n    return []\n"
    )
    (package / "workers" / "download_x.py").write_text(
        textwrap.dedent(
            '''
            """Download x."""
            from nemo_nowcast import NowcastWorker
            from nowcast import lib

            def main():
                worker = NowcastWorker("download_x", description=__doc__)
                worker.init_cli()
                print(worker.cli.parser.prog, lib.answer())

            if __name__ == "__main__":
                main()
            '''
        )
    )
    return package


@pytest.mark.parametrize("first", ["system", "framework", "nemo_nowcast"])
def test_a_system_package_named_nowcast_first_on_the_path(tmp_path, first):
    make_system(tmp_path)
    imports = {
        "system": "import nowcast.lib, nowcast.workers.download_x",
        "framework": "import nowcast.manager, nowcast.workers.sleep",
        "nemo_nowcast": "import nemo_nowcast.worker",
    }
    code = f"""
        {imports[first]}
        import nowcast, nowcast.lib, nowcast.next_workers, nowcast.manager
        import nowcast.workers.download_x, nowcast.workers.sleep
        from nowcast import Config, NowcastWorker
        import nemo_nowcast
        print(nowcast.lib.answer(), nowcast.lib.__file__.startswith({str(tmp_path)!r}))
        print(nowcast.manager.__file__.startswith({str(tmp_path)!r}))
        print(nemo_nowcast.NowcastWorker is NowcastWorker)
        """
    # run in the system's root: it comes first on sys.path, before the framework
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "True", "False", "True"]


def test_python_m_runs_the_systems_workers_and_the_frameworks_processes(tmp_path):
    make_system(tmp_path)
    result = run("", tmp_path, "-m", "nowcast.workers.download_x", "x.yaml")
    assert (result.returncode, result.stdout) == (0, "python -m nowcast.workers.download_x 42\n")
    result = run("", tmp_path, "-m", "nowcast.manager", "--help")
    assert result.stdout.startswith("usage: python -m nowcast.manager"), result.stderr
    result = run("", tmp_path, "-m", "nowcast.workers.sleep", "--help")
    assert result.stdout.startswith("usage: python -m nowcast.workers.sleep"), result.stderr


@pytest.mark.parametrize("name", ["config.py", "workers/sleep.py", "manager/__init__.py"])
def test_a_module_name_both_define_is_refused(tmp_path, name):
    make_system(tmp_path)
    path = tmp_path / "nowcast" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("MINE = True\n")
    module = "nowcast." + name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    result = run(f"import {module}", tmp_path)
    assert result.returncode == 1
    assert f"ImportError: module {module!r} is defined twice" in result.stderr
    assert str(path) in result.stderr


def test_the_systems_init_runs_in_the_merged_package(tmp_path):
    make_system(tmp_path, '"""Mine."""\n__version__ = "9.9"\nSYSTEM = "mine"\n')
    result = run("import nowcast; print(nowcast.SYSTEM, nowcast.__version__)", tmp_path)
    assert result.stdout.split() == ["mine", __import__("nowcast").__version__], result.stderr


@pytest.mark.parametrize("binding", ["Config = None", "def worker(): pass"])
def test_the_systems_init_may_not_rebind_nowcasts_names(tmp_path, binding):
    make_system(tmp_path, binding + "\n")
    result = run("import nowcast", tmp_path)
    assert result.returncode == 1
    assert "__init__.py binds" in result.stderr and "a name of nowcast's own" in result.stderr


def test_a_copy_of_nowcast_first_on_the_path_is_nowcast_not_a_system(tmp_path):
    import shutil

    import nowcast

    source = Path(nowcast.__file__).parent
    shutil.copytree(source, tmp_path / "nowcast", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(source.parent / "_nowcast_path.py", tmp_path)
    result = run("import nowcast.manager; print(nowcast.manager.__file__)", tmp_path)
    assert result.stdout.strip() == str(tmp_path / "nowcast" / "manager.py"), result.stderr
