"""int8 graphs: the exported fp32 ONNX graph quantised statically (QDQ) on a run's own training images.

ONNX Runtime's static quantisation inserts QuantizeLinear/DequantizeLinear pairs around every
convolution and matrix product: weights per output channel (int8), activations per tensor, their
ranges the minimum and maximum each reaches on the calibration images. Activations are signed
and symmetric: on EfficientNet-Lite0, unsigned ones kept a minimum cosine of 0.85-0.94 with the
fp32 features on 64 Dogs-vs-Cats photos, signed symmetric ones 0.976. The quantised graph is
cached beside the fp32 one, named by a digest of the calibration images, so a run calibrates once;
ONNX Runtime runs it as `onnx-int8`, and OpenVINO compiles the same graph into its own int8 kernels
as `openvino-int8`.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_with
from imagefit.errors import OptionError

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 256  # how many of a run's training images calibrate its int8 graph


@dataclass(frozen=True)
class Calibration:
    """Images that calibrate an int8 graph: a digest naming them, and a way to produce their batches."""

    digest: str  # of the images' contents: the cached graph's name
    batches: Callable[[], Iterable[np.ndarray]]  # preprocessed (n, 3, h, w) float32 batches


def calibration_digest(file_digests: Iterable[str]) -> str:
    """A short name for a calibration set, from its files' content digests."""
    return hashlib.sha256(" ".join(sorted(file_digests)).encode()).hexdigest()[:16]


def int8_path(fp32_graph: Path, digest: str) -> Path:
    """Where the int8 graph of `fp32_graph` calibrated on the set `digest` is cached."""
    return fp32_graph.with_name(f"{fp32_graph.stem}-int8-{digest}.onnx")


def cached_int8(fp32_graph: Path, digest: str | None) -> Path | None:
    """The cached int8 graph for that calibration; with no digest, the only one cached (else None)."""
    if digest is not None:
        path = int8_path(fp32_graph, digest)
        return path if path.is_file() else None
    found = sorted(fp32_graph.parent.glob(f"{fp32_graph.stem}-int8-*.onnx"))
    return found[0] if len(found) == 1 else None


def quantized_graph(fp32_graph: Path, calibration: Calibration | None) -> Path:
    """The int8 graph of `fp32_graph`, quantised on `calibration` the first time and cached."""
    cached = cached_int8(fp32_graph, calibration.digest if calibration else None)
    if cached is not None:
        return cached
    if calibration is None:
        raise OptionError(
            "the int8 engines are calibrated on a run's training images: use them through a run "
            "(imagefit predict RUN or serve RUN), whose training images must still be readable"
        )
    target = int8_path(fp32_graph, calibration.digest)
    log.info(
        "quantising the backbone to int8 on %d-image calibration set %s", CALIBRATION_IMAGES, target.stem
    )
    write_with(target, lambda tmp: quantize(fp32_graph, tmp, calibration.batches()))
    return target


def quantize(fp32_graph: Path, out: Path, batches: Iterable[np.ndarray]) -> None:
    """Write the static QDQ int8 quantisation of `fp32_graph` (input 'images') as `out`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": np.ascontiguousarray(batch, np.float32)}

    with tempfile.TemporaryDirectory(prefix="imagefit-quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_graph), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,  # signed, symmetric: u8 activations lost more here
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # ONNX Runtime holds every calibration image's activations until the end (about 15 MB an
            # image here); its CalibMaxIntermediateOutputs, which would bound that, drops data in 1.32
            extra_options={"ActivationSymmetric": True},
        )
