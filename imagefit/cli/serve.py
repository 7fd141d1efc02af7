"""imagefit serve: a run's model over HTTP."""

from __future__ import annotations

from pathlib import Path

import click

from imagefit.cli.options import run_engine_option


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free.")
@click.option("--token", default=None, help="Require Authorization: Bearer TOKEN (or $IMAGEFIT_SERVE_TOKEN).")
@click.option(
    "--audit", type=click.Path(path_type=Path), help="An imagefit audit folder to review at /audit."
)
@run_engine_option
@click.option(
    "--max-batch", type=click.IntRange(min=1), default=16, show_default=True, help="Images per batch."
)
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="How long a batch waits for requests being decoded.")  # fmt: skip
@click.option("--queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images waiting for the model before 503s.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=20.0, show_default=True)
@click.option("--max-files", type=click.IntRange(min=1), default=64, show_default=True, help="Per request.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, help="Default: $IMAGEFIT_MAX_PIXELS.")
def serve(run_dir, host, port, token, audit, engine, max_batch, max_wait_ms, queue, timeout, max_upload_mb,
          max_files, max_pixels) -> None:  # fmt: skip
    """Serve RUN over HTTP: POST /predict, GET /model, /health, and a page to try it at /."""
    from imagefit.serve import Limits
    from imagefit.serve import serve as serve_run

    limits = Limits(
        max_upload_mb=max_upload_mb, max_files=max_files, max_pixels=max_pixels, queue=queue,
        timeout_s=timeout, max_batch=max_batch, max_wait_ms=max_wait_ms,
    )  # fmt: skip
    ready = lambda url: click.echo(f"imagefit serve: {url} (Ctrl-C or SIGTERM to stop)", err=True)  # noqa: E731
    serve_run(run_dir, host, port, token, audit, engine, limits, ready)
