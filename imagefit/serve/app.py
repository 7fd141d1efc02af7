"""The HTTP routes: /predict, /health, /model, the page at / and, with an audit folder, /audit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib.resources import files
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from imagefit.data.transforms import decode_size
from imagefit.inference.predictions import Predictions
from imagefit.serve.answers import answer_rows
from imagefit.serve.audit import AuditFolder, thumbnail_or_none
from imagefit.serve.batcher import Batcher, QueueFull
from imagefit.serve.guards import BodyLimit, TokenGuard
from imagefit.serve.limits import Limits
from imagefit.serve.model import ServedModel
from imagefit.serve.problems import JSONLine, Problem, busy, problem_response
from imagefit.serve.uploads import decode_uploads, read_uploads

log = logging.getLogger(__name__)

STATIC = Path(str(files("imagefit.serve") / "static"))


def create_app(
    model: ServedModel,
    limits: Limits | None = None,
    token: str | None = None,
    audit: AuditFolder | None = None,
) -> FastAPI:
    """The server's application: `model` behind a dynamic batcher, guarded by `limits` and `token`."""
    limits = limits or Limits()
    batcher = Batcher(model.answers, limits.max_batch, limits.max_wait_ms / 1000, limits.queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="imagefit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
        default_response_class=JSONLine,
    )  # fmt: skip
    app.state.batcher, app.state.model, app.state.limits = batcher, model, limits
    _add_error_handlers(app)
    _add_pages(app, audit is not None)
    _add_api(app, model, batcher, limits)
    if audit is not None:
        _add_audit(app, audit, model)
    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes)
    if token:
        app.add_middleware(TokenGuard, token=token)  # added last: runs first
    return app


def _add_api(app: FastAPI, model: ServedModel, batcher: Batcher, limits: Limits) -> None:
    min_size = decode_size(model.classifier.data_config)

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "queued": batcher.pending,
            "batches": batcher.batches,
            "images": batcher.images,
        }

    @app.get("/model")
    async def describe() -> dict:
        return {**model.describe(), "limits": limits.as_dict()}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        with batcher.incoming():
            try:
                async with asyncio.timeout(limits.timeout_s):
                    uploads = await read_uploads(request, limits)
            except TimeoutError:
                raise Problem(408, f"the upload took longer than {limits.timeout_s:g} s") from None
            pictures = await run_in_threadpool(decode_uploads, uploads, min_size, limits)
            try:
                futures = batcher.submit(pictures)
            except QueueFull as exc:
                raise busy(f"the server is busy: {exc}; try again shortly") from None
        try:
            async with asyncio.timeout(limits.timeout_s):
                rows = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except TimeoutError:
            raise busy(f"no answer from the model within {limits.timeout_s:g} s; try again later") from None
        names = [Path(u.name) for u in uploads]
        answer = Predictions(
            model.classes, names, np.stack([p for p, _ in rows]), thresholds=model.thresholds
        )
        if model.classifier.familiarity is not None:
            answer.familiarity = np.array([f for _, f in rows])
            answer.unknown = model.classifier.familiarity.unknown(answer.familiarity)
        return JSONLine(answer_rows(answer))  # the rows of predict --csv, in input order


def _add_pages(app: FastAPI, with_audit: bool) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/audit", include_in_schema=False)
    async def audit_page() -> FileResponse:
        if not with_audit:
            raise Problem(
                404, "no audit to review: start the server with --audit DIR (an imagefit audit folder)"
            )
        return FileResponse(STATIC / "audit.html")


def _add_audit(app: FastAPI, audit: AuditFolder, model: ServedModel) -> None:
    @app.get("/audit/findings")
    async def findings() -> dict:
        return audit.describe(model.classes)

    @app.get("/audit/thumb/{number}")
    async def thumbnail(number: int) -> Response:
        try:
            audit.image_path(number)
        except KeyError:
            raise Problem(404, f"audit.csv has no finding {number}") from None
        data = await run_in_threadpool(thumbnail_or_none, audit, number)
        if data is None:
            raise Problem(404, f"the image of finding {number} is missing or does not decode")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem_response(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(ClientDisconnect)
    async def on_disconnect(request: Request, exc: ClientDisconnect) -> Response:
        log.info("a client left before its upload was complete")
        return Response(status_code=400)  # nobody is listening any more
