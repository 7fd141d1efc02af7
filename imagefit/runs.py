"""The run folder: config.json, model.safetensors, metrics.json; loading a run needs nothing else."""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

import timm
from safetensors.torch import load_model, save_model

from imagefit import __version__
from imagefit._atomic import write_json, write_with
from imagefit.errors import ModelError, OptionError
from imagefit.inference.classifier import Classifier

CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.json"
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
    imagefit_version: str = __version__
    format_version: int = FORMAT_VERSION


def backbone_config(
    backbone, dataset, strategy: str, seed: int, data: str | Path, options: dict
) -> RunConfig:
    """The config of a run that trains on top of a registry backbone (linear, finetune)."""
    return RunConfig(
        backbone=backbone.spec.name,
        arch=backbone.spec.arch,
        weights=backbone.weights,
        classes=dataset.classes,
        data_config=backbone.data_config,
        strategy=strategy,
        seed=seed,
        data=str(Path(data).resolve()),
        layout=dataset.layout,
        options=options,
    )


def new_run_dir(base: str | Path = "runs", prefix: str = "run") -> Path:
    """A fresh folder under `base` named by prefix and time; never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = Path(base) / (f"{prefix}-{stamp}" + (f"-{n}" if n else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ModelError(f"could not create a new run folder under {base}")


def check_out_folder(out: str | Path | None) -> None:
    """Fail before any work when the run folder asked for cannot be one (an existing file)."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise OptionError(f"--out {out} is a file: give a folder for the run (new or existing)")


def save_run(run_dir: Path, classifier: Classifier, config: RunConfig, metrics: dict) -> None:
    """Write weights, config and metrics into `run_dir`, each file atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": "imagefit", "arch": config.arch, "num_classes": str(len(config.classes))}
    write_with(run_dir / WEIGHTS, lambda p: save_model(classifier.model, str(p), metadata=meta))
    write_json(run_dir / CONFIG, _jsonable(asdict(config)))
    write_json(run_dir / METRICS, metrics)


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


def load(run_dir: str | Path) -> Classifier:
    """The classifier saved in a run folder (or in an .onnx file written by imagefit export)."""
    from imagefit.inference.onnx_classifier import OnnxClassifier, is_onnx_model

    if is_onnx_model(run_dir):
        return OnnxClassifier(run_dir)
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if not (run_dir / WEIGHTS).is_file():
        raise ModelError(f"{run_dir} has no {WEIGHTS}: the run did not finish")
    if "small_cnn" in config.options:  # scratch runs: the architecture is a spec, not a timm name
        from imagefit.models.small_cnn import SmallCNN

        model = SmallCNN.from_description(config.options["small_cnn"], num_classes=len(config.classes))
    else:
        model = timm.create_model(config.arch, pretrained=False, num_classes=len(config.classes))
    if config.options.get("dense_skips"):  # map runs of backbones: FCN-8s class-score layers
        from imagefit.maps.dense import add_dense_skips

        add_dense_skips(model)
    try:
        load_model(model, str(run_dir / WEIGHTS))
    except Exception as exc:  # safetensors: no code runs; a damaged or foreign file only fails
        raise ModelError(
            f"{run_dir / WEIGHTS} cannot be loaded ({_first_reason(exc)}): "
            "it is damaged or belongs to another model; train the run again"
        ) from exc
    info = {"backbone": config.backbone, "arch": config.arch, "run": str(run_dir)}
    return Classifier(model, config.classes, config.data_config, info)


def _first_reason(exc: Exception) -> str:
    """The telling line of a (possibly many-line) loading error, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    telling = next((line for line in lines if "mismatch" in line or "Missing key" in line), lines[0])
    return telling[:200]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _tuples(data_config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data_config.items()}


def predict(run_dir: str | Path, inputs, **options):
    """Predictions of the classifier in `run_dir` for image files and folders."""
    return load(run_dir).predict(inputs, **options)
