"""What trackers log, in the shapes their libraries take: flat parameters, numbers, the run's files."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from types import ModuleType

from imagefit.errors import OptionError
from imagefit.runs.folder import CONFIG, CURVES, HISTORY, METRICS, REPORT

ARTIFACTS = (REPORT, CONFIG, METRICS, HISTORY, CURVES)  # those of them a run folder holds are logged
MAX_PARAM = 500  # characters of a parameter's value (MLflow stores up to 6000, older servers 500)


def need(module: str, extra: str, library: str) -> ModuleType:
    """Import `module`, or fail with the command that installs the optional extra it belongs to."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionError(
            f"--track {extra} needs {library}, which is not installed: pip install 'imagefit[{extra}]'"
        ) from exc


def run_params(logs: dict) -> dict[str, str]:
    """A run-begin's parameters as flat strings: strategy, backbone, seed, options.*, data.*."""
    config = logs.get("config") or {}
    top = {k: config.get(k) for k in ("strategy", "backbone", "arch", "weights", "seed", "task", "data")}
    params = {**top, "classes": ", ".join(config.get("classes") or [])}
    params.update(flat(config.get("options") or {}, "options"))
    params.update(flat(logs.get("data") or {}, "data"))
    return {k: _text(v)[:MAX_PARAM] for k, v in params.items() if v is not None}


def numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested dict under dotted keys ('valid.accuracy'); others dropped."""
    return {k: float(v) for k, v in flat(metrics, prefix).items() if _number(v)}


def epoch_metrics(logs: dict) -> dict[str, float]:
    """A history row's numbers but the epoch (which is the step): loss, acc, val_loss, val_acc, lr..."""
    return {k: float(v) for k, v in logs.items() if k != "epoch" and _number(v)}


def flat(obj: dict, prefix: str = "") -> dict[str, object]:
    """A nested dict's leaves under dotted keys; lists and tuples stay whole."""
    out: dict[str, object] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flat(value, name))
        else:
            out[name] = value
    return out


def run_files(run_dir: str | Path) -> list[Path]:
    """The run folder's files that trackers keep as artifacts (report, config, metrics, history, curves)."""
    return [Path(run_dir) / name for name in ARTIFACTS if (Path(run_dir) / name).is_file()]


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
