"""Vectors by content digest in one SQLite file: lookups cost what they ask for, appends are atomic.

One file per model key. A lookup of k digests reads k rows through the primary-key B-tree, never
the whole store, so its time and memory do not grow with the collection. Each append is one SQLite
transaction: a writer killed half-way leaves the store as it was before that append, and
processes that append at once wait their turn (`busy_timeout`) instead of failing. The file uses
SQLite's write-ahead log, which lets readers go on while one process writes; on a network
filesystem, where the log's shared memory cannot be shared between machines, it uses the rollback
journal instead (`IMAGEFIT_STORE_JOURNAL` overrides the choice).

A store given a precision ('fp32', 'bf16', 'int8-...') records it with its first vectors and
refuses vectors of another precision, to write or to read: an engine's reduced-precision vectors
never mix with fp32 ones of the same images. A store from before precisions were recorded holds fp32.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_BUSY_MS = 600_000  # how long a writer waits for another one before giving up
_IN_CHUNK = 500  # digests per SELECT ... IN (...), below SQLite's parameter limit
_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "9p"}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vectors (digest BLOB PRIMARY KEY, vector BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class PrecisionMismatch(ValueError):
    """Vectors of one precision asked of, or offered to, a store holding another."""


class VectorStore:
    """float32 vectors of one size by hex digest, in the SQLite file at `path` (created on first use)."""

    def __init__(self, path: str | os.PathLike, precision: str | None = None):
        self.path = Path(path)
        self.precision = precision  # None: any (the store's own is not checked)
        self._checked = False
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # a forked child opens its own
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _open(self.path)
            self._pid = os.getpid()
        return self._conn

    def get(self, digests: list[str]) -> dict[int, np.ndarray]:
        """Position in `digests` -> stored vector, for those present."""
        where: dict[bytes, list[int]] = {}
        for i, digest in enumerate(digests):
            if digest:
                where.setdefault(bytes.fromhex(digest), []).append(i)
        keys, found = list(where), {}
        with self._lock:
            conn = self._connect()
            if not self._checked:
                self._check_precision(conn, write=False)
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                sql = f"SELECT digest, vector FROM vectors WHERE digest IN ({','.join('?' * len(chunk))})"
                for digest, blob in conn.execute(sql, chunk):
                    vector = np.frombuffer(blob, np.float32)
                    found.update((i, vector) for i in where[digest])
        return found

    def put(self, digests: list[str], vectors: np.ndarray) -> int:
        """Append vectors for digests in one transaction (digests already stored are kept); rows added."""
        if not digests:
            return 0
        vectors = np.ascontiguousarray(vectors, np.float32)
        rows = [(bytes.fromhex(d), v.tobytes()) for d, v in zip(digests, vectors, strict=True)]
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                _check_dim(conn, vectors.shape[1], self.path)
                self._check_precision(conn, write=True)
                before = conn.total_changes
                conn.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
                added = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return added

    def _check_precision(self, conn: sqlite3.Connection, write: bool) -> None:
        """Refuse a store of another precision; a writer records its own in a new store."""
        if self.precision is None:
            return
        row = conn.execute("SELECT value FROM meta WHERE name = 'precision'").fetchone()
        held = row[0] if row else None
        if held is None:
            has_vectors = conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None
            held = "fp32" if has_vectors else None  # written before precisions were recorded
            if write and held is None:
                conn.execute("INSERT INTO meta VALUES ('precision', ?)", (self.precision,))
                held = self.precision
        if held is not None and held != self.precision:
            raise PrecisionMismatch(
                f"{self.path} holds {held} feature vectors, not {self.precision}: vectors of two "
                "precisions are never mixed (another engine's vectors belong in their own store)"
            )
        self._checked = held is not None

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def batches(self, size: int = 4096) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every (digests, vectors) in the store, `size` at a time, in digest order."""
        last = b""
        while True:
            with self._lock:
                rows = (
                    self._connect()
                    .execute(
                        "SELECT digest, vector FROM vectors WHERE digest > ? ORDER BY digest LIMIT ?",
                        (last, size),
                    )
                    .fetchall()
                )
            if not rows:
                return
            last = rows[-1][0]
            yield [d.hex() for d, _ in rows], np.stack([np.frombuffer(v, np.float32) for _, v in rows])

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _open(path: Path) -> sqlite3.Connection:
    """A connection with the schema in place; a file that is not a database is moved aside."""
    try:
        return _prepare(
            sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False),
            path,
        )
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc) and "malformed" not in str(exc):
            raise
        aside = path.with_name(f"{path.name}.damaged-{time.time_ns():x}")
        log.warning("feature store %s is damaged (%s): moved to %s, starting a new one", path, exc, aside)
        os.replace(path, aside)
        return _prepare(
            sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False),
            path,
        )


def _prepare(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    mode = journal_mode(path)
    _set_journal_mode(conn, mode)
    conn.execute("PRAGMA synchronous = NORMAL" if mode == "wal" else "PRAGMA synchronous = FULL")
    for statement in _SCHEMA:
        conn.execute(statement)
    return conn


def _set_journal_mode(conn: sqlite3.Connection, mode: str) -> None:
    """Switch the file to `mode`, waiting for other processes that hold it: SQLite answers a journal
    mode change that meets a lock with "database is locked" at once, without its busy handler."""
    deadline, pause = time.monotonic() + _BUSY_MS / 1000, 0.001
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != mode:
        try:
            conn.execute(f"PRAGMA journal_mode = {mode}")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _check_dim(conn: sqlite3.Connection, dim: int, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE name = 'dim'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta VALUES ('dim', ?)", (str(dim),))
    elif int(row[0]) != dim:
        raise ValueError(f"{path} holds vectors of size {row[0]}, not {dim}")


def journal_mode(path: str | os.PathLike) -> str:
    """'wal' on a local filesystem, 'delete' (the rollback journal) on a network one."""
    forced = os.environ.get("IMAGEFIT_STORE_JOURNAL", "").lower()
    if forced in ("wal", "delete"):
        return forced
    return "delete" if filesystem_type(path) in _NETWORK_FS else "wal"


def filesystem_type(path: str | os.PathLike) -> str:
    """The type of the filesystem holding `path`, from /proc/mounts ('' where unknown)."""
    target, best, kind = os.path.realpath(path), "", ""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split()
        inside = len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/"))
        if inside and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind
