"""The SQLite feature store: lookups, old shards moved in, appends that survive kills and rivals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imagefit.features import vectorstore
from imagefit.features.cache import FeatureCache
from imagefit.features.vectorstore import VectorStore, journal_mode
from tests._stream import batch, old_shard

_WRITER = """
import importlib.util, sys
def load(name, path):  # by file, not through the imagefit package, to start in a blink
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
store = load("vectorstore", sys.argv[1]).VectorStore(sys.argv[3])
batch = load("stream", sys.argv[2]).batch
for n in range(int(sys.argv[4]), int(sys.argv[5])):
    store.put(*batch(n))
    print(n, flush=True)
"""


def _writer(path: Path, first: int, stop: int) -> subprocess.Popen:
    module = Path(vectorstore.__file__)
    args = [module, Path(__file__).with_name("_stream.py"), path, first, stop]
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def _all_whole(store: VectorStore, batches: range) -> None:
    """Every row of each batch reads back exactly, and nothing else is there."""
    for n in batches:
        digests, vectors = batch(n)
        got = store.get(digests)
        assert sorted(got) == list(range(len(digests)))
        np.testing.assert_array_equal(np.stack([got[i] for i in range(len(digests))]), vectors)
    assert len(store) == 500 * len(batches)


def test_lookup_reads_what_was_put_and_repeated_digests(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v.sqlite")
    digests, vectors = batch(0, 10)
    assert store.put(digests[:6], vectors[:6]) == 6
    assert store.put(digests[4:], vectors[4:]) == 4  # the two already there are kept, not doubled
    got = store.get([digests[9], "", digests[9], "ab" * 16])
    assert sorted(got) == [0, 2]
    np.testing.assert_array_equal(got[2], vectors[9])
    assert len(store) == 10
    seen = {d: v for ds, vs in store.batches(3) for d, v in zip(ds, vs, strict=True)}
    assert sorted(seen) == sorted(digests)
    np.testing.assert_array_equal(seen[digests[3]], vectors[3])


def test_another_vector_size_is_refused(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v.sqlite")
    store.put(*batch(0, 2))
    with pytest.raises(ValueError, match="size 64"):
        store.put(["00" * 16], np.zeros((1, 8), np.float32))
    assert len(store) == 2


def test_a_file_that_is_not_a_store_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = VectorStore(path)
    store.put(*batch(0, 3))
    assert len(VectorStore(path)) == 3
    assert len(list(tmp_path.glob("v.sqlite.damaged-*"))) == 1


def test_network_filesystems_get_the_rollback_journal(tmp_path: Path, monkeypatch) -> None:
    assert journal_mode(tmp_path) == "wal" or "nfs" in Path("/proc/mounts").read_text()
    monkeypatch.setenv("IMAGEFIT_STORE_JOURNAL", "delete")
    store = VectorStore(tmp_path / "v.sqlite")
    store.put(*batch(0, 2))
    assert store._connect().execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_old_shards_move_into_the_store_without_recomputing(tmp_path: Path) -> None:
    """A cache folder as imagefit wrote it before the store: shards read once, then removed."""
    folder = tmp_path / "features" / "key"
    folder.mkdir(parents=True)
    expected = {}
    for n in range(3):
        digests, vectors = batch(n, 20)
        old_shard(folder / f"{n:x}-1.safetensors", digests, vectors)
        expected.update(zip(digests, vectors, strict=True))
    cache = FeatureCache("key", root=tmp_path)
    got = cache.get(list(expected))
    assert len(got) == 60
    for i, vector in enumerate(expected.values()):
        np.testing.assert_array_equal(got[i], vector)
    assert not list(folder.glob("*.safetensors"))
    assert len(FeatureCache("key", root=tmp_path).get(list(expected))) == 60


def test_writer_killed_mid_append_leaves_a_whole_store(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    writer = _writer(path, 0, 10_000)
    done = [int(writer.stdout.readline()) for _ in range(3)]
    time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    store = VectorStore(path)
    count = len(store)
    assert count % 500 == 0 and count >= 500 * len(done)  # no half batch
    _all_whole(store, range(count // 500))
    store.put(*batch(count // 500))  # and writing goes on
    assert len(store) == count + 500


def test_two_processes_appending_at_once_lose_and_double_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    first, second = _writer(path, 0, 12), _writer(path, 6, 18)  # batches 6-11 from both
    for proc in (first, second):
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    _all_whole(VectorStore(path), range(18))


class _Row:
    def __init__(self, value: str):
        self.value = value

    def fetchone(self) -> tuple[str]:
        return (self.value,)


class _Contended:
    """A connection whose journal mode switch meets another process's lock `times` times."""

    def __init__(self, times: int):
        self.times, self.mode, self.tries = times, "delete", 0

    def execute(self, sql: str) -> _Row:
        import sqlite3

        if sql != "PRAGMA journal_mode":
            self.tries += 1
            if self.tries <= self.times:
                raise sqlite3.OperationalError("database is locked")
            self.mode = sql.rsplit(" ", 1)[1]
        return _Row(self.mode)


def test_the_switch_to_the_write_ahead_log_waits_out_a_lock() -> None:
    """SQLite answers a journal mode switch that would deadlock with another process (two torchrun
    ranks opening one new store) by "database is locked" at once, without its busy handler."""
    conn = _Contended(times=5)
    vectorstore._set_journal_mode(conn, "wal")
    assert conn.mode == "wal" and conn.tries == 6


def _create_and_put(path: str, n: int, start, errors) -> None:
    digests, vectors = batch(n, 14)
    start.wait()
    try:
        VectorStore(path).put(digests, vectors)
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_creating_one_new_store_at_once_all_write(tmp_path: Path) -> None:
    """The case above as it happens: two processes open one new store at the same instant."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for trial in range(40):
        path, start = str(tmp_path / f"v{trial}.sqlite"), context.Event()
        procs = [context.Process(target=_create_and_put, args=(path, n, start, errors)) for n in (0, 1)]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join(timeout=60)
        assert errors.empty(), errors.get()
        assert len(VectorStore(path)) == 28, trial
