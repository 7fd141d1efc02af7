"""uvicorn running the app on a bound socket: a ready callback, and a graceful end on SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI


class ReadyServer(uvicorn.Server):
    """uvicorn's server, calling `on_ready` once it listens."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None):
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()


def run_server(
    app: FastAPI, sock: socket.socket, grace_s: float, on_ready: Callable[[], None] | None = None
) -> None:
    """Serve `app` on `sock` until SIGTERM or Ctrl-C; requests in flight get `grace_s` to finish."""
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=int(grace_s) + 1)
    with _signals_end_quietly():
        ReadyServer(config, on_ready).run(sockets=[sock])


@contextlib.contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """uvicorn raises the SIGTERM or SIGINT it caught again after its graceful shutdown: let it end
    nothing more, so the process exits 0 (and Ctrl-C prints no traceback)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
