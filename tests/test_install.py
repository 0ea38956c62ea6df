"""How nowcast is installed: a plain path entry for the editable install (no
import hook, no deprecated mode), and the start-up hook that merges a system's
own package named nowcast."""

from __future__ import annotations

import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_no_deprecated_editable_mode_and_no_pinned_build_backend():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = pyproject["build-system"]
    assert build["build-backend"] == "hatchling.build"
    assert not any("<" in requirement for requirement in build["requires"]), build
    assert "editable_mode" not in (ROOT / "Makefile").read_text()


def test_the_editable_install_is_a_path_entry_and_the_hook_is_installed():
    site = Path(sysconfig.get_path("purelib"))
    entries = [
        line
        for pth in site.glob("*nowcast*.pth")
        if pth.name != "_nowcast_path.pth"
        for line in pth.read_text().splitlines()
        if line.strip()
    ]
    # an editable install from a checkout: path entries only, no import hook
    if entries:
        assert all(not line.startswith("import") for line in entries), entries
        assert str(ROOT) in entries
    assert (site / "_nowcast_path.pth").read_text().strip() == "import _nowcast_path"
    import _nowcast_path

    assert _nowcast_path.NowcastFinder in __import__("sys").meta_path
