"""How logits are computed for a window of pixels: densely (PyTorch or ONNX Runtime) or patch by patch.

Every engine takes a normalised window (1, 3, h, w) and returns logits (classes, h-P+1, w-P+1),
a new array its caller may change: the logits of the patch whose top-left corner is at each position.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagefit.errors import OptionError
from imagefit.features.engines import export_onnx, onnx_session
from imagefit.maps.mapping.decoder_engines import GRAPH_ENGINES, ChosenDecoderEngine, GraphDecoderEngine
from imagefit.maps.mapping.defaults import ENGINES
from imagefit.maps.mapping.dense_networks import DenseDecoder, DenseSmallCNN, dense_model
from imagefit.maps.mapping.view_engines import with_views
from imagefit.models.small_cnn import SmallCNN

log = logging.getLogger(__name__)


class NaiveEngine:
    """The reference: every patch cut out and classified on its own, in batches.

    A small CNN classifies a patch as it was trained to; a backbone's patch goes alone through the
    same dense network that maps (its centre position), without the context a tile gives it.
    """

    exact, margin, reduction = True, 0, 1

    def __init__(self, model: nn.Module, patch: int, batch_size: int = 1024):
        self.patch, self.batch_size = patch, batch_size
        if isinstance(model, SmallCNN):
            self.model = model.eval()
        else:
            net = dense_model(model, patch).eval()
            self.model = lambda x: net(x)[:, :, 0, 0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        p = self.patch
        t = torch.from_numpy(x)
        grid = t.unfold(2, p, 1).unfold(3, p, 1)[0]  # (bands, rows, cols, p, p), a view
        rows, cols = grid.shape[1:3]
        patches = grid.permute(1, 2, 0, 3, 4).reshape(-1, t.shape[1], p, p)
        out = []
        with torch.inference_mode():
            for i in range(0, len(patches), self.batch_size):
                out.append(self.model(patches[i : i + self.batch_size].contiguous()))
        return torch.cat(out).reshape(rows, cols, -1).permute(2, 0, 1).numpy()


class TorchDenseEngine:
    """The dense network in PyTorch, channels_last (measured faster on a CPU)."""

    def __init__(self, model: nn.Module, patch: int):
        self.net = dense_model(model, patch).eval().to(memory_format=torch.channels_last)
        self.exact, self.margin, self.reduction = self.net.exact, self.net.margin, self.net.reduction

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.net(t)[0].contiguous().numpy()


class OnnxDenseEngine:
    """The dense network exported to ONNX Runtime with free height and width (small CNNs)."""

    exact, margin, reduction = True, 0, 1

    def __init__(self, model: nn.Module, patch: int, threads: int | None = None):
        net = dense_model(model, patch).eval()
        side = patch + 8
        axes = {"images": {2: "h", 3: "w"}, "logits": {2: "rows", 3: "cols"}}
        with tempfile.TemporaryDirectory(prefix="imagefit-map-") as tmp:
            path = Path(tmp) / "dense.onnx"
            chans = getattr(model, "in_chans", 3)  # the image's bands
            export_onnx(net, (chans, side, side), path, output="logits", dynamic_batch=False, axes=axes)
            self.session = onnx_session(path, threads)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"images": x})[0][0]


def make_engine(
    model: nn.Module, patch: int, naive: bool = False, engine: str = "auto", tta: bool = False,
    temperature: float | None = None, key: str | None = None,
):  # fmt: skip
    """The engine that maps with `model`: naive, or dense through ONNX Runtime or PyTorch (a decoder
    also OpenVINO, and with `auto` on a CPU the fastest that maps as PyTorch does, measured); with
    `tta`, a decoder's windows are mapped in their 8 symmetries and averaged; with a `temperature`
    (a calibrated run's), each view's logits are divided by it before any softmax. `key` names the
    weights where a decoder's graph and engine are cached (a run's key, see `graph_engine.run_key`)."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if tta and (naive or patch != 1):
        raise OptionError("--tta applies to decoders (a class for every pixel), not patch classifiers")
    if tta or (temperature is not None and temperature != 1):
        return with_views(make_engine(model, patch, naive, engine, key=key), tta, temperature)
    if naive:
        return NaiveEngine(model, patch)
    on_cpu = next(model.parameters()).device.type == "cpu"
    dense = dense_model(model, patch)
    if isinstance(dense, DenseDecoder) and (engine in GRAPH_ENGINES or (engine == "auto" and on_cpu)):
        if engine == "auto":
            return ChosenDecoderEngine(dense, TorchDenseEngine(model, patch), key)
        return GraphDecoderEngine(dense, engine, key=key)
    if engine.startswith("openvino"):
        raise OptionError(f"--engine {engine} maps decoders (unet, fpn, deeplabv3plus): use onnx or torch")
    if engine == "onnx" or (
        engine == "auto" and on_cpu and isinstance(dense_model(model, patch), DenseSmallCNN)
    ):
        try:
            return OnnxDenseEngine(model, patch)
        except Exception as exc:  # the exporter or runtime refused: PyTorch computes the same
            if engine == "onnx":
                raise OptionError(f"ONNX Runtime cannot run this model densely: {exc}") from exc
            log.info("ONNX Runtime unavailable for this model (%s): using PyTorch", exc)
    return TorchDenseEngine(model, patch)
