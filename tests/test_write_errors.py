"""Files that cannot be written: a user error naming the path for runs, a warning for the cache.

Tests run as root, where a read-only folder still accepts writes, so a full disk is simulated:
os.fsync fails with ENOSPC for files under one folder, as it does when the disk fills up.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from imagefit.cli import cli
from imagefit.data.atomic import write_text, write_with
from imagefit.errors import WriteError
from imagefit.features.cache import FeatureCache
from tests.conftest import TINY

WARNING = "going on without the feature cache"


def _disk_full_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _store_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feature store's SQLite file cannot grow: the disk is full."""
    import sqlite3

    from imagefit.features.vectorstore import VectorStore

    def put(self, digests, vectors):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(VectorStore, "put", put)


def test_full_disk_is_a_write_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    _disk_full_under(monkeypatch, tmp_path)
    target = tmp_path / "out" / "a.txt"
    with pytest.raises(WriteError, match=f"could not write {target}: the disk is full: free some space"):
        write_with(target, lambda p: p.write_text("hello"))
    assert list(target.parent.iterdir()) == []  # no temporary left behind


def test_a_safetensors_io_error_is_a_write_error(tmp_path: Path) -> None:
    def writer(tmp: Path) -> None:  # the temporary is a file, so nothing can go under it
        save_file({"a": np.zeros(3, np.float32)}, str(tmp / "inner.safetensors"))

    with pytest.raises(WriteError, match=f"could not write {tmp_path / 'x.safetensors'}: not a directory"):
        write_with(tmp_path / "x.safetensors", writer)


def test_other_errors_of_a_writer_pass_through(tmp_path: Path) -> None:
    def writer(tmp: Path) -> None:
        raise ValueError("not about the disk")

    with pytest.raises(ValueError, match="not about the disk"):
        write_with(tmp_path / "y.txt", writer)


def test_run_folder_on_a_full_disk_is_exit_2_naming_it(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    _disk_full_under(monkeypatch, run)
    result = CliRunner().invoke(cli, ["train", str(tiny_data), "--out", str(run), *TINY])
    assert result.exit_code == 2, result.output
    assert f"could not write {run}/" in result.output
    assert "the disk is full" in result.output and "internal error" not in result.output


def test_unwritable_cache_warns_once_and_keeps_vectors_in_memory(tmp_path: Path, monkeypatch, caplog) -> None:
    _store_full(monkeypatch)
    cache = FeatureCache("k", root=tmp_path)
    cache.put(["00" * 16], np.ones((1, 4), np.float32))
    cache.put(["11" * 16], np.full((1, 4), 2, np.float32))
    assert sum(WARNING in r.getMessage() for r in caplog.records) == 1
    assert str(tmp_path / "features" / "k") in caplog.text
    assert "database or disk is full" in caplog.text
    found = cache.get(["11" * 16, "22" * 16])
    assert list(found) == [0] and found[0].tolist() == [2.0] * 4


def test_run_goes_on_without_an_unwritable_cache(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("IMAGEFIT_CACHE", str(cache))
    _store_full(monkeypatch)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(tiny_data), "--out", str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").stat().st_size > 10_000
    assert result.output.count(WARNING) == 1
    assert not list(cache.rglob("*.safetensors"))
    from safetensors.torch import load_file

    assert "classifier.weight" in load_file(str(run / "model.safetensors"))


def test_written_files_get_the_mode_a_plain_open_would(tmp_path: Path) -> None:
    """Not mkstemp's private 0o600: a new file gets 0o666 less the umask, a replaced one keeps its mode."""
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "new.txt", "a")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640
        (tmp_path / "kept.txt").write_text("b")
        os.chmod(tmp_path / "kept.txt", 0o604)
        write_text(tmp_path / "kept.txt", "c")
        assert (tmp_path / "kept.txt").stat().st_mode & 0o777 == 0o604
        assert (tmp_path / "kept.txt").read_text() == "c"
    finally:
        os.umask(old)
