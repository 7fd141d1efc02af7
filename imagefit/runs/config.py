"""A run's config.json: everything needed to rebuild and reuse its model."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

from imagefit.data.atomic import write_json
from imagefit.errors import ModelError
from imagefit.runs.folder import CONFIG
from imagefit.version import __version__

FORMAT_VERSION = 1


@dataclass
class RunConfig:
    """Everything needed to rebuild and reuse a trained classifier."""

    backbone: str
    arch: str
    weights: str
    classes: list[str]
    data_config: dict
    strategy: str
    seed: int
    data: str = ""
    layout: str = ""
    options: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)  # what rebuilds the architecture (models.build)
    task: str = "single"  # or "multilabel": sigmoid outputs, a label predicted from its threshold
    thresholds: list[float] = field(default_factory=list)  # per label, for a multi-label run
    # classifiers: folded into the weights (how to undo it); map runs: applied to the logits when mapping
    calibration: dict = field(default_factory=dict)
    familiarity: dict = field(default_factory=dict)  # threshold, recall, k (arrays: familiarity.safetensors)
    imagefit_version: str = __version__
    format_version: int = FORMAT_VERSION

    def model_record(self) -> dict:
        """The architecture record; runs saved before it existed are read from their options."""
        if self.model:
            return self.model
        if "small_cnn" in self.options:
            return {"kind": "small_cnn", "description": self.options["small_cnn"]}
        return {"kind": "timm", "arch": self.arch, "dense_skips": bool(self.options.get("dense_skips"))}

    def label_thresholds(self) -> list[float] | None:
        """The per-label thresholds of a multi-label run; None for a single-label run."""
        return list(self.thresholds) if self.task == "multilabel" else None


def write_config(run_dir: str | Path, config: RunConfig) -> None:
    """Write config.json atomically."""
    write_json(Path(run_dir) / CONFIG, _jsonable(asdict(config)))


def read_config(run_dir: str | Path) -> RunConfig:
    """Read and check a run's config.json."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if not path.is_file():
        raise ModelError(f"{run_dir} is not a run folder (no {CONFIG}): pass a folder made by imagefit train")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        reason = f"not valid JSON: {exc}"
        raise ModelError(f"{path} is damaged ({reason}): train the run again or restore the file") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"{path} is not an imagefit run config: pass a folder made by imagefit train")
    version = raw.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(
            f"{run_dir} was written by a newer imagefit ({raw.get('imagefit_version')}, run format "
            f"{version}; this is {__version__}, format {FORMAT_VERSION}): upgrade imagefit to use it"
        )
    known = RunConfig.__dataclass_fields__
    required = [name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in raw]
    if missing:
        raise ModelError(f"{path} lacks {', '.join(missing)}: the run folder is damaged, train again")
    raw["data_config"] = _tuples(raw["data_config"])
    return RunConfig(**{k: v for k, v in raw.items() if k in known})


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _tuples(data_config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data_config.items()}
