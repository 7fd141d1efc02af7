"""A run's familiarity: its record in config.json and its arrays in familiarity.safetensors, read back."""

from __future__ import annotations

from pathlib import Path

from imagefit.errors import ModelError
from imagefit.runs.config import read_config
from imagefit.runs.folder import FAMILIARITY


def run_familiarity(run_dir: str | Path, record: dict | None = None):
    """The Familiarity a run keeps, or None for a run trained without one (or before there were any)."""
    from imagefit.inference.familiarity import Familiarity

    run_dir = Path(run_dir)
    record = read_config(run_dir).familiarity if record is None else record
    path = run_dir / FAMILIARITY
    if not record or not path.is_file():
        return None
    try:
        return Familiarity.load(path, record)
    except Exception as exc:  # safetensors: a damaged file only fails, nothing in it runs
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} cannot be loaded ({reason}): train the run again") from exc
