"""Inference engines that turn a batch of images into embedding vectors.

On a CPU the candidates are eager PyTorch (fp32, NCHW), PyTorch channels_last, bf16 autocast
(channels_last), and ONNX Runtime and OpenVINO (fp32 or bf16) on an exported graph, cached beside
the feature cache and keyed like it, and both on that graph quantised to int8 on a run's training
images (`imagefit.features.quantize`). `imagefit.features.autotune` picks among the fp32 ones;
a run's reduced-precision engines are judged by the predictions they give
(`imagefit.inference.judge`). On a GPU PyTorch runs channels_last under bf16 autocast. Every
engine names its `precision`: vectors of different precisions are never cached together.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from imagefit.data.atomic import write_with
from imagefit.errors import OptionError
from imagefit.features.machine import native_bf16
from imagefit.features.onnx_runtime import onnx_session as torch_free_session
from imagefit.features.quantize import Calibration, quantized_graph
from imagefit.models.defaults import ENGINES, OPENVINO_ENGINES, TORCH_ENGINES, precision_of

log = logging.getLogger(__name__)


Engine = Callable[[torch.Tensor], np.ndarray]


class TorchEngine:
    """PyTorch in inference mode: NCHW or channels_last, fp32 or bf16 autocast."""

    def __init__(
        self,
        net: torch.nn.Module,
        device: torch.device | None = None,
        channels_last: bool = True,
        bf16: bool | None = None,
    ):
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.bf16 = self.device.type == "cuda" if bf16 is None else bf16
        self.memory = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.eval().to(self.device, memory_format=self.memory)
        self.name = "bf16" if self.bf16 else ("channels_last" if channels_last else "eager")
        self.precision = "bf16" if self.bf16 else "fp32"

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory)
        if self.bf16:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self.net(x).float().cpu().numpy()
        return self.net(x).cpu().numpy()


class OnnxEngine:
    """ONNX Runtime on the CPU, with the exported graph cached on disk."""

    name, precision = "onnx", "fp32"

    def __init__(
        self,
        net: torch.nn.Module,
        input_size: tuple[int, int, int],
        path: Path,
        calibration: Calibration | None = None,
        int8: bool = False,
    ):
        if int8:
            self.name, self.precision = "onnx-int8", "int8"
            self.session = onnx_session(_int8_graph(net, input_size, path, calibration))
        else:
            self.session = _load_cached(net, input_size, path, onnx_session)

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"images": x.numpy()})[0]


class OpenVinoEngine:
    """OpenVINO on the CPU, compiled from the cached ONNX graph; bf16 where the CPU computes it natively."""

    def __init__(
        self,
        net: torch.nn.Module,
        input_size: tuple[int, int, int],
        path: Path,
        bf16: bool = False,
        calibration: Calibration | None = None,
        int8: bool = False,
    ):
        import openvino

        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",  # an int8 graph's rest: fp32
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "PERFORMANCE_HINT": "LATENCY",
        }

        def compile_graph(graph: Path):
            return openvino.Core().compile_model(str(graph), "CPU", config)

        if int8:
            self.model = compile_graph(_int8_graph(net, input_size, path, calibration))
        else:
            self.model = _load_cached(net, input_size, path, compile_graph)
        self.name = "openvino-int8" if int8 else ("openvino-bf16" if bf16 else "openvino")
        self.precision = "int8" if int8 else ("bf16" if bf16 else "fp32")

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return np.array(self.model(x.numpy())[0], np.float32)


def _load_cached(net: torch.nn.Module, input_size: tuple[int, int, int], path: Path, load):
    """`load(path)` of the cached graph, exported first when missing; a cached graph that fails to
    load is exported again, not trusted."""
    if not path.is_file():
        log.info("exporting the backbone to ONNX for fast CPU inference (once per model)")
        export_onnx(net.eval(), input_size, path)
        return load(path)
    try:
        return load(path)
    except Exception as exc:
        log.warning("cached ONNX graph %s is unreadable (%s): exporting it again", path, exc)
        export_onnx(net.eval(), input_size, path)
        return load(path)


def _int8_graph(net, input_size, path: Path, calibration: Calibration | None) -> Path:
    """The int8 graph of the cached fp32 one (exported first when missing)."""
    if not path.is_file():
        export_onnx(net.eval(), input_size, path)
    return quantized_graph(path, calibration)


def onnx_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session on torch's threads (see `onnx_runtime.onnx_session`)."""
    return torch_free_session(path, threads or torch.get_num_threads())


def export_onnx(
    net: torch.nn.Module,
    input_size: tuple[int, int, int],
    path: Path,
    output: str | tuple[str, ...] = "features",
    dynamic_batch: bool = True,
    batch: int = 1,
    metadata: dict[str, str] | None = None,
    axes: dict | None = None,
) -> None:
    """Write `net` as an ONNX graph (input 'images'; one output, or several named by a tuple) atomically,
    with optional metadata.

    `axes` names free axes of the input and output beyond the batch (e.g. height and width)."""
    dummy = torch.zeros(batch, *input_size, device=next(net.parameters()).device)  # where the net is
    outputs = [output] if isinstance(output, str) else list(output)
    if axes is None and dynamic_batch:
        axes = {name: {0: "batch"} for name in ["images", *outputs]}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                dummy,
                str(tmp),
                input_names=["images"],
                output_names=outputs,
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


def unavailable(kind: str) -> str | None:
    """Why engine `kind` cannot run on this machine, or None when it can."""
    if kind not in ENGINES or kind == "auto":
        return f"unknown engine {kind!r}: choose one of {', '.join(ENGINES)}"
    if precision_of(kind) == "bf16" and not torch.cuda.is_available() and not native_bf16():
        return f"the {kind} engine needs a CPU computing bf16 natively (AVX-512 BF16, AMX): this one does not"
    for library, engines in (("openvino", OPENVINO_ENGINES), ("onnxruntime", ("onnx", "onnx-int8"))):
        if kind in engines and importlib.util.find_spec(library) is None:
            return f"the {kind} engine needs {library}, which is not installed (pip install {library})"
    return None


def build_engine(
    net: torch.nn.Module,
    data_config: dict,
    kind: str,
    onnx_path: Path | None = None,
    calibration: Calibration | None = None,
) -> Engine:
    """The engine named `kind` (not 'auto'); 'torch' is channels_last on a CPU, bf16 on a GPU.

    An int8 engine quantises the exported graph on `calibration` (once: the graph is cached)."""
    if kind == "torch":
        return TorchEngine(net)
    if (why := unavailable(kind)) is not None:
        raise OptionError(why)
    if kind in TORCH_ENGINES:
        return TorchEngine(net, channels_last=kind != "eager", bf16=kind == "bf16")
    if onnx_path is None:
        raise OptionError(f"the {kind} engine needs a path for the exported graph")
    size, int8 = tuple(data_config["input_size"]), precision_of(kind) == "int8"
    if kind in OPENVINO_ENGINES:
        return OpenVinoEngine(net, size, onnx_path, kind == "openvino-bf16", calibration, int8)
    return OnnxEngine(net, size, onnx_path, calibration, int8)


def make_engine(
    net: torch.nn.Module,
    data_config: dict,
    kind: str = "auto",
    onnx_path: Path | None = None,
    calibration: Calibration | None = None,
) -> Engine:
    """The engine `kind` names; 'auto' without a measured choice: ONNX Runtime on a CPU, PyTorch on a GPU."""
    if kind != "auto":
        return build_engine(net, data_config, kind, onnx_path, calibration)
    if torch.cuda.is_available() or onnx_path is None:
        return TorchEngine(net)
    try:
        return OnnxEngine(net, tuple(data_config["input_size"]), onnx_path)
    except Exception as exc:
        log.warning("ONNX Runtime unavailable for this model (%s): using PyTorch", exc)
        return TorchEngine(net)
