"""Errors a request earns: an HTTP status and one line of JSON naming the problem."""

from __future__ import annotations

from starlette.responses import JSONResponse

RETRY_AFTER_S = 1


class JSONLine(JSONResponse):
    """JSON on one line, ended by a newline (so curl's output ends cleanly)."""

    def render(self, content) -> bytes:
        return super().render(content) + b"\n"


class Problem(Exception):
    """A request the server refuses, with the status and the message to answer it with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def busy(message: str) -> Problem:
    """A 503 that tells the client when to try again."""
    return Problem(503, message, {"Retry-After": str(RETRY_AFTER_S)})


def problem_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` on one line, with `status`."""
    return JSONLine({"error": " ".join(str(message).split())}, status, headers=headers)
