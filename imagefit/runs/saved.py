"""A run's model: saved as safetensors beside its config, loaded back as a classifier."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from imagefit.data.atomic import write_json, write_with
from imagefit.errors import ModelError
from imagefit.inference.classifier import Classifier
from imagefit.models.build import build_model
from imagefit.runs.config import RunConfig, read_config, write_config
from imagefit.runs.engines import resolve_engine
from imagefit.runs.familiarity import run_familiarity
from imagefit.runs.folder import FAMILIARITY, METRICS, WEIGHTS


def save_run(run_dir: str | Path, classifier: Classifier, config: RunConfig, metrics: dict) -> None:
    """Write weights, config and metrics into `run_dir`, each file atomically."""
    from safetensors.torch import save_model

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": "imagefit", "arch": config.arch, "num_classes": str(len(config.classes))}
    write_with(run_dir / WEIGHTS, lambda p: save_model(classifier.model, str(p), metadata=meta))
    if classifier.familiarity is not None:
        classifier.familiarity.save(run_dir / FAMILIARITY)
        config.familiarity = classifier.familiarity.record()
    write_config(run_dir, config)
    write_json(run_dir / METRICS, metrics)


def load(run_dir: str | Path) -> Classifier:
    """The classifier saved in a run folder (or in an .onnx file written by imagefit export)."""
    from imagefit.inference.onnx_classifier import OnnxClassifier, is_onnx_model

    if is_onnx_model(run_dir):
        return OnnxClassifier(run_dir)
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if not (run_dir / WEIGHTS).is_file():
        raise ModelError(f"{run_dir} has no {WEIGHTS}: the run did not finish")
    model = build_model(config.model_record(), len(config.classes))
    from safetensors.torch import load_model

    try:
        load_model(model, str(run_dir / WEIGHTS))
    except Exception as exc:  # safetensors: no code runs; a damaged or foreign file only fails
        raise ModelError(
            f"{run_dir / WEIGHTS} cannot be loaded ({_first_reason(exc)}): "
            "it is damaged or belongs to another model; train the run again"
        ) from exc
    info = {"backbone": config.backbone, "arch": config.arch, "run": str(run_dir)}
    classifier = Classifier(model, config.classes, config.data_config, info, config.label_thresholds())
    classifier.familiarity = run_familiarity(run_dir, config.familiarity)
    classifier.engine_resolver = lambda value, n: resolve_engine(run_dir, classifier, value, n)
    return classifier


def predict(run_dir: str | Path, inputs, **options):
    """Predictions of the classifier in `run_dir` for image files and folders."""
    return load(run_dir).predict(inputs, **options)


def open_model(
    model_or_run: str | os.PathLike, weights: str | Path = "auto"
) -> tuple[torch.nn.Module, dict, dict]:
    """(model, data_config, description) for a backbone name or a run folder."""
    path = Path(model_or_run)
    if path.is_dir():
        classifier = load(path)
        info = {"source": str(path.resolve()), **classifier.info}
        return classifier.model, classifier.data_config, info
    if os.sep in str(model_or_run) or str(model_or_run).startswith("."):
        raise ModelError(f"{model_or_run} is neither a run folder nor a backbone name")
    from imagefit.models.registry import create_backbone

    backbone = create_backbone(str(model_or_run), weights)
    info = {
        "source": backbone.spec.name,
        "backbone": backbone.spec.name,
        "arch": backbone.spec.arch,
        "weights": backbone.weights,
    }
    if isinstance(weights, Path):
        info["weights_file"] = str(weights.resolve())
    return backbone.model, backbone.data_config, info


def _first_reason(exc: Exception) -> str:
    """The telling line of a (possibly many-line) loading error, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    telling = next((line for line in lines if "mismatch" in line or "Missing key" in line), lines[0])
    return telling[:200]
