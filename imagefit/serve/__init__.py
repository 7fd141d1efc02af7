"""Serve a trained run over HTTP: batched predictions, limits on uploads, pages to try it and review an audit.

Only `serve` is imported here; FastAPI and uvicorn load when it is called.
"""

from imagefit.serve.launch import TOKEN_ENV, serve
from imagefit.serve.limits import Limits

__all__ = ["TOKEN_ENV", "Limits", "serve"]
