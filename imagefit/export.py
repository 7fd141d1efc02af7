"""imagefit.export: a run's classifier as an ONNX or TorchScript file that runs without imagefit's code."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from imagefit.data.atomic import write_with
from imagefit.errors import ImagefitError, ModelError, OptionError
from imagefit.features.engines import export_onnx, onnx_session
from imagefit.inference.onnx_classifier import graph_metadata
from imagefit.runs import load

FORMATS = ("onnx", "torchscript")


@dataclass
class ExportResult:
    """Where the model went and how far its outputs are from PyTorch's on the same images."""

    path: Path
    max_abs_diff: float


def export(
    run_dir: str | os.PathLike,
    format: str = "onnx",
    out: str | os.PathLike | None = None,
    dynamic_batch: bool = False,
    batch: int = 1,
) -> ExportResult:
    """Export the run's whole network (images in, logits out) and compare it with PyTorch."""
    if format not in FORMATS:
        raise OptionError(f"unknown export format {format!r}: choose onnx or torchscript")
    classifier = load(run_dir)
    model = classifier.model.eval()
    input_size = tuple(classifier.data_config["input_size"])
    suffix = ".onnx" if format == "onnx" else ".pt"
    path = Path(out) if out is not None else Path(run_dir) / f"model{suffix}"
    if batch < 1:
        raise OptionError(f"--batch-size must be at least 1, got {batch}")
    x = torch.randn(
        max(batch, 2) if dynamic_batch else batch, *input_size, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        reference = model(x).numpy()
    metadata = graph_metadata(classifier.classes, classifier.data_config, classifier.thresholds)
    try:
        if format == "onnx":
            export_onnx(model, input_size, path, "logits", dynamic_batch, batch, metadata)
            got = _run_onnx(path, x.numpy())
        else:
            got = _export_torchscript(model, x, path, metadata)
    except ImagefitError:
        raise
    except Exception as exc:  # the exporters' own errors: an operator or construct they cannot write
        other = "torchscript" if format == "onnx" else "onnx"
        name = classifier.info.get("backbone", "this model")
        raise ModelError(
            f"{name} cannot be exported as {format} ({_first_line(exc)}): try --format {other}"
        ) from exc
    return ExportResult(path, float(np.abs(got - reference).max()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    return onnx_session(path).run(None, {"images": x})[0]


def _export_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path, metadata: dict) -> np.ndarray:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
    write_with(path, lambda p: torch.jit.save(traced, str(p), _extra_files=metadata))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return loaded(x).numpy()
