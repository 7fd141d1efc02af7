"""`imagefit.serve`: load a run, bind the address, serve until SIGTERM or Ctrl-C, then exit cleanly."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from imagefit.errors import OptionError
from imagefit.serve.limits import Limits

log = logging.getLogger(__name__)

TOKEN_ENV = "IMAGEFIT_SERVE_TOKEN"


def serve(
    run: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    audit: str | Path | None = None,
    engine: str = "auto",
    limits: Limits | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the classifier of `run` over HTTP on host:port until SIGTERM or Ctrl-C.

    Requests need `Authorization: Bearer TOKEN` when `token` (or $IMAGEFIT_SERVE_TOKEN) is set;
    `audit` (an imagefit audit folder) adds the review page /audit. `ready` is called with the
    server's URL once it accepts requests (port 0 picks a free port). On SIGTERM the server stops
    accepting, answers every request already accepted, and returns.
    """
    from imagefit.serve.app import create_app
    from imagefit.serve.audit import AuditFolder
    from imagefit.serve.model import ServedModel
    from imagefit.serve.uvicorn_server import run_server

    limits = limits or Limits()
    folder = AuditFolder(audit) if audit is not None else None
    model = ServedModel.from_run(run, engine, limits.max_batch)
    app = create_app(model, limits, token or os.environ.get(TOKEN_ENV) or None, folder)
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise OptionError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port"
        ) from exc
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}/"
    log.info("serving %s (engine %s) at %s", Path(run).name, model.engine_name, url)
    run_server(app, sock, limits.timeout_s, lambda: ready(url) if ready else None)
