"""Inference engines that turn a batch of images into embedding vectors.

On a CPU, ONNX Runtime runs EfficientNet several times faster than eager PyTorch; the exported
graph is cached beside the feature cache, keyed like it. Elsewhere PyTorch runs channels_last.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from imagefit._atomic import write_with
from imagefit.errors import OptionError

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx")

Engine = Callable[[torch.Tensor], np.ndarray]


class TorchEngine:
    """Eager PyTorch, channels_last, inference mode."""

    name = "torch"

    def __init__(self, net: torch.nn.Module, device: torch.device | None = None):
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.net = net.eval().to(self.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.net(x).float().cpu().numpy()
        return self.net(x).numpy()


class OnnxEngine:
    """ONNX Runtime on the CPU, with the exported graph cached on disk."""

    name = "onnx"

    def __init__(self, net: torch.nn.Module, input_size: tuple[int, int, int], path: Path):
        import onnxruntime as ort

        if not path.is_file():
            log.info("exporting the backbone to ONNX for fast CPU inference (once per model)")
            export_onnx(net.eval(), input_size, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a cached graph that fails to load is exported again, not trusted
            log.warning("cached ONNX graph %s is unreadable (%s): exporting it again", path, exc)
            export_onnx(net.eval(), input_size, path)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"images": x.numpy()})[0]


def export_onnx(
    net: torch.nn.Module,
    input_size: tuple[int, int, int],
    path: Path,
    output: str = "features",
    dynamic_batch: bool = True,
    batch: int = 1,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write `net` as an ONNX graph (input 'images', one output) atomically, with optional metadata."""
    dummy = torch.zeros(batch, *input_size)
    axes = {"images": {0: "batch"}, output: {0: "batch"}} if dynamic_batch else None

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                dummy,
                str(tmp),
                input_names=["images"],
                output_names=[output],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        if metadata:
            import onnx

            graph = onnx.load(str(tmp))
            for key, value in metadata.items():
                graph.metadata_props.add(key=key, value=value)
            onnx.save(graph, str(tmp))

    write_with(path, write)


def make_engine(
    net: torch.nn.Module, data_config: dict, kind: str = "auto", onnx_path: Path | None = None
) -> Engine:
    """The engine `kind` names for the embedding `net`; 'auto': ONNX Runtime on a CPU, PyTorch on a GPU."""
    if kind not in ENGINES:
        raise OptionError(f"unknown engine {kind!r}: choose one of {', '.join(ENGINES)}")
    if kind == "torch" or (kind == "auto" and torch.cuda.is_available()):
        return TorchEngine(net)
    if onnx_path is None:
        raise OptionError("the onnx engine needs a path for the exported graph")
    try:
        return OnnxEngine(net, tuple(data_config["input_size"]), onnx_path)
    except Exception as exc:
        if kind == "onnx":
            raise
        log.warning("ONNX Runtime unavailable for this model (%s): using PyTorch", exc)
        return TorchEngine(net)
