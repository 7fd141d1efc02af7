"""Where imagefit keeps what it can compute again: features, engines, graphs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$IMAGEFIT_CACHE, else ~/.cache/imagefit."""
    env = os.environ.get("IMAGEFIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "imagefit"
