"""ASGI guards in front of the routes: a bearer token, and a bound on the bytes of a request body."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagefit.serve.problems import Problem, problem_response

OPEN_PATHS = ("/", "/audit", "/health", "/favicon.ico")  # pages and liveness: no model, no data
OPEN_PREFIXES = ("/static/",)


class TokenGuard:
    """Answers 401 to any request for data or predictions that lacks `Authorization: Bearer TOKEN`."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]) or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        headers = {"WWW-Authenticate": 'Bearer realm="imagefit"'}
        answer = problem_response(
            401, "a bearer token is required: send Authorization: Bearer TOKEN", headers
        )
        await answer(scope, receive, send)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def _authorised(self, scope: Scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self.expected)


class BodyLimit:
    """Refuses a body over `limit` bytes: at once by its Content-Length, else when it grows past it."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit():
            await problem_response(400, "the Content-Length header is not a number")(scope, receive, send)
            return
        if int(declared) > self.limit:
            await problem_response(413, self._too_large(int(declared)))(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _too_large(self, size: int | None) -> str:
        said = f" ({size:,} bytes)" if size is not None else ""
        return f"the request body{said} is larger than the limit of {self.limit:,} bytes (--max-upload-mb)"

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise Problem(413, self._too_large(None))
            return message

        return counted
