"""Helpers for the server tests: a tiny trained run, a real uvicorn server in a thread, HTTP over sockets."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from PIL import Image

from tests.conftest import TINY_MODEL, make_folder

_RUNS: dict[str, Path] = {}


def tiny_run(root: Path) -> Path:
    """A linear run of the tiny test model on generated blue/red images (trained once per session)."""
    if "tiny" not in _RUNS:
        from imagefit.train import train

        data = make_folder(root / "data")
        train(
            data,
            out=root / "run",
            model=TINY_MODEL,
            weights="none",
            engine="torch",
            workers=0,
            progress=False,
        )
        _RUNS["tiny"] = root / "run"
    return _RUNS["tiny"]


def jpeg_bytes(colour=(220, 40, 30), size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


class StatusLog(logging.Handler):
    """Counts the statuses uvicorn's access log reports, and keeps error records."""

    def __init__(self):
        super().__init__()
        self.statuses: list[int] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "uvicorn.access" and record.args and len(record.args) >= 5:
            self.statuses.append(int(record.args[4]))
        elif record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


@contextlib.contextmanager
def running(app) -> Iterator[tuple[int, StatusLog]]:
    """`app` served by uvicorn on 127.0.0.1 and a free port, in a thread; yields (port, its log)."""
    log = StatusLog()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "imagefit")]
    for lg in loggers:
        lg.addHandler(log)
        lg.setLevel(logging.INFO)
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1], log
    finally:
        server.should_exit = True
        thread.join(30)
        for lg in loggers:
            lg.removeHandler(log)


def multipart(files: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (file name, bytes, content type) parts, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data, ctype in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout=60
) -> tuple[int, dict, object]:
    """(status, headers, JSON or bytes) of one request over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        heads = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    if heads.get("content-type", "").startswith("application/json"):
        return response.status, heads, json.loads(data)
    return response.status, heads, data


def post_files(port: int, files: list[tuple[str, bytes, str]], headers: dict | None = None, timeout=60):
    """POST /predict with multipart files."""
    body, ctype = multipart(files)
    return request(port, "POST", "/predict", body, {"Content-Type": ctype, **(headers or {})}, timeout)


class Load:
    """`clients` threads posting one good JPEG each, again and again, until stopped; statuses counted."""

    def __init__(self, port: int, clients: int = 4, data: bytes | None = None):
        self.port, self.data = port, data or jpeg_bytes()
        self.statuses: list[int] = []
        self.finished: list[float] = []  # time.monotonic() of each answer
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _client(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if never stopped
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, _, answer = post_files(self.port, [("load.jpg", self.data, "image/jpeg")])
                self.statuses.append(status)
                self.finished.append(time.monotonic())
                if status != 200:
                    self.failures.append(str(answer))
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(type(exc).__name__)
