"""NEMO_Nowcast's file helpers, reached through nowcast.fileutils."""

from __future__ import annotations

import os
import stat

import pytest

from nowcast import fileutils
from nowcast.fileutils import AtomicSaver, FilePerms, atomic_save, copytree, iter_find_files


def test_file_perms_int_and_back():
    assert int(FilePerms(user="rw", group="rw", other="r")) == 0o664
    assert int(FilePerms(user="xwr", group="", other="x")) == 0o701
    perms = FilePerms.from_int(0o640)
    assert (perms.user, perms.group, perms.other) == ("rw", "r", "")
    assert repr(FilePerms("wr", "r")) == "FilePerms(user='rw', group='r', other='')"
    with pytest.raises(ValueError, match="invalid characters"):
        FilePerms(user="rwz")
    with pytest.raises(TypeError):
        FilePerms(user=7)


def test_file_perms_from_path(tmp_path):
    path = tmp_path / "f"
    path.write_text("")
    path.chmod(int(FilePerms(user="rw", group="r", other="")))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert FilePerms.from_path(path) == FilePerms("rw", "r", "")


def test_atomic_save_replaces_or_leaves_alone(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    dest.chmod(0o600)
    with atomic_save(str(dest), text_mode=True) as f:
        f.write("new")
        assert dest.read_text() == "old"
    assert dest.read_text() == "new" and stat.S_IMODE(dest.stat().st_mode) == 0o600
    with pytest.raises(RuntimeError), atomic_save(str(dest)) as f:
        f.write(b"half")
        raise RuntimeError
    assert dest.read_text() == "new" and not (tmp_path / "out.txt.part").exists()
    with pytest.raises(FileExistsError), AtomicSaver(str(dest), overwrite=False):
        pass


def test_mkdir_p_iter_find_files_copytree(tmp_path):
    fileutils.mkdir_p(tmp_path / "a" / "b")
    fileutils.mkdir_p(tmp_path / "a" / "b")
    for name in ("x.py", "y.txt", ".#z.py"):
        (tmp_path / "a" / "b" / name).write_text(name)
    found = sorted(os.path.basename(p) for p in iter_find_files(tmp_path, "*.py", ignored=".#*"))
    assert found == ["x.py"]
    (tmp_path / "copy").mkdir()
    copytree(tmp_path / "a", tmp_path / "copy")
    assert (tmp_path / "copy" / "b" / "y.txt").read_text() == "y.txt"
    with pytest.raises(AttributeError):
        fileutils.no_such_helper  # noqa: B018


def test_temporaries_are_written_whole_or_none_is_left(tmp_path):
    files = [(str(tmp_path / "checklist.yaml"), b"a: 1\n"), (str(tmp_path / "state"), b"{}")]
    temporaries = fileutils.write_temporaries(files)
    assert [open(t, "rb").read() for t in temporaries] == [b"a: 1\n", b"{}"]
    for t in temporaries:
        os.unlink(t)
    files.append((str(tmp_path / "missing" / "third"), b"x"))  # its directory is not there
    with pytest.raises(FileNotFoundError):
        fileutils.write_temporaries(files)
    assert os.listdir(tmp_path) == []  # the first two were removed
