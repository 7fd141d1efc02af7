"""SIGTERM under load: `imagefit serve` stops accepting, answers every request it accepted, exits 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests._serve import Load, jpeg_bytes, tiny_run

ROOT = Path(__file__).resolve().parents[1]
REFUSED = {"ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "BrokenPipeError"}


def start_server(run: Path, cache: Path) -> tuple[subprocess.Popen, list[str], int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGEFIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "imagefit", "serve", str(run), "--port", "0", "--engine", "torch"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []  # uvicorn's access log goes to stdout, the rest to stderr
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = [re.search(r"imagefit serve: http://127\.0\.0\.1:(\d+)/", line) for line in lines]
        if any(found):
            return proc, lines, int(next(m for m in found if m).group(1))
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start:\n" + "".join(lines))


def test_sigterm_mid_load_loses_no_accepted_request(tmp_path_factory) -> None:
    run = tiny_run(tmp_path_factory.mktemp("sigterm"))
    proc, lines, port = start_server(run, tmp_path_factory.mktemp("cache"))
    try:
        with Load(port, clients=8, data=jpeg_bytes(size=(320, 240))) as load:
            deadline = time.monotonic() + 60
            while len(load.statuses) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
    served = sum(1 for line in lines if '"POST /predict HTTP/1.1" 200' in line)
    assert code == 0, "".join(lines[-20:])
    assert set(load.statuses) == {200}
    assert served == len(load.statuses)  # every answer the server gave reached its client
    assert any(t > signalled for t in load.finished)  # requests in flight at SIGTERM were finished
    assert set(load.failures) <= REFUSED, load.failures  # later ones were refused, never half-answered
    assert not any("Traceback" in line or "Exception" in line for line in lines)
