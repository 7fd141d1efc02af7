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
from imagefit.maps.mapping.decoder_engines import (
    AGREEMENT,
    GRAPH_ENGINES,
    PROBE,
    ChosenDecoderEngine,
    GraphDecoderEngine,
    centre,
)
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
    """The dense network in PyTorch on `device` (the CPU unless given), channels_last (measured
    faster on a CPU; the layout a GPU's tensor cores take), in fp32 or, with `amp` (torch.bfloat16 or
    torch.float16), under autocast; the logits come back as float32 on the CPU."""

    def __init__(self, model: nn.Module, patch: int, device=None, amp: torch.dtype | None = None):
        self.device, self.amp = torch.device(device or "cpu"), amp
        self.net = dense_model(model, patch).eval().to(self.device, memory_format=torch.channels_last)
        self.exact, self.margin, self.reduction = self.net.exact, self.net.margin, self.net.reduction

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None),
        ):
            logits = self.net(t)[0]
        return logits.float().contiguous().cpu().numpy()


GPU_KINDS = {"torch": None, "torch-bf16": torch.bfloat16, "torch-fp16": torch.float16}


class GpuEngine:
    """A dense network on this process's GPU (its local rank's under torchrun), channels_last, under
    autocast (bf16 where the GPU computes it, else fp16) when its classes agree with fp32's on at
    least AGREEMENT of the centre of the first window's pixels, else in fp32: the CPU engines' rule.
    Decided once per map (`decide`), or by rank 0 of a torchrun world for all (`use`)."""

    def __init__(self, model: nn.Module, patch: int, device=None):
        from imagefit.train.engine.distributed import device as rank_device

        self.torch = TorchDenseEngine(model, patch, device or rank_device())
        self.exact, self.margin, self.reduction = self.torch.exact, self.torch.margin, self.torch.reduction
        gpu = self.torch.device.type == "cuda"
        self.amp_kind = "torch-bf16" if not gpu or torch.cuda.is_bf16_supported() else "torch-fp16"
        self.name = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.decide(x)
        return self.torch(x)

    def decide(self, x: np.ndarray) -> str:
        """`torch-bf16` (or `torch-fp16`) if autocast keeps the classes of fp32 on window `x`'s centre,
        else `torch` (fp32); measured once."""
        if not self.name:
            probe = centre(x, PROBE)
            self.use("torch")
            reference = self.torch(probe).argmax(0)
            self.use(self.amp_kind)
            agreement = float((self.torch(probe).argmax(0) == reference).mean())
            kind = self.amp_kind if agreement >= AGREEMENT else "torch"
            log.info("GPU engine %s: %s agrees with fp32 on %.2f%% of a window's pixels",
                     kind, self.amp_kind, 100 * agreement)  # fmt: skip
            self.use(kind)
        return self.name

    def use(self, kind: str) -> None:
        """Map in `kind` (torch: fp32, torch-bf16, torch-fp16) from now on."""
        if kind not in GPU_KINDS:
            raise OptionError(f"unknown GPU engine {kind!r}: one of {', '.join(GPU_KINDS)}")
        self.torch.amp, self.name = GPU_KINDS[kind], kind


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
    also OpenVINO, and with `auto` on a CPU the fastest that maps as PyTorch does, measured; with
    `auto` or `torch` where there is a GPU, PyTorch on it, `auto` under AMP where it agrees); with
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
    if engine in ("auto", "torch") and torch.cuda.is_available():  # a GPU: PyTorch there, AMP if it agrees
        gpu = GpuEngine(model, patch)
        if engine == "torch":
            gpu.use("torch")
        return gpu
    on_cpu = next(model.parameters()).device.type == "cpu"
    dense = dense_model(model, patch)
    graphable = isinstance(dense, DenseDecoder | DenseSmallCNN)  # a backbone's FCN-8s map stays PyTorch's
    if graphable and engine == "auto" and on_cpu:
        return ChosenDecoderEngine(dense, TorchDenseEngine(model, patch), key)
    if graphable and engine in GRAPH_ENGINES:
        return GraphDecoderEngine(dense, engine, key=key)
    if engine.startswith("openvino"):
        raise OptionError(
            f"--engine {engine} maps decoders (unet, fpn, deeplabv3plus) and small CNNs: use onnx or torch"
        )
    if engine == "onnx":  # a backbone's FCN-8s map
        try:
            return OnnxDenseEngine(model, patch)
        except Exception as exc:  # the exporter or runtime refused
            raise OptionError(f"ONNX Runtime cannot run this model densely: {exc}") from exc
    return TorchDenseEngine(model, patch)
