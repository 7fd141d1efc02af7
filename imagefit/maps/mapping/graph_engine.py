"""A decoder's cached ONNX graph on ONNX Runtime or OpenVINO, and what is remembered about it, in NumPy.

Nothing here imports torch: once a run's decoder has been exported and its engine chosen on this
machine (`decoder_engines`, with PyTorch), later maps of the run find both in the cache, keyed by
the content of the run's model.safetensors and config.json, and neither import PyTorch nor build
the model: they start in a fraction of the time and hold about half the memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import metadata
from pathlib import Path

import numpy as np

from imagefit.cores import default_threads
from imagefit.data.digests import file_digest
from imagefit.errors import OptionError
from imagefit.features.locations import cache_root
from imagefit.features.onnx_runtime import onnx_session
from imagefit.maps.mapping.defaults import ALIGN

log = logging.getLogger(__name__)

GRAPH_ENGINES = ("onnx", "openvino", "openvino-bf16")


class GraphEngine:
    """A dense network's exported graph (free height and width) on ONNX Runtime or OpenVINO: a
    decoder's logits (classes, h, w) of a window, padded to the encoder's stride (`align`) by
    reflection outside the graph; a patch classifier's (`patch` > 1, `exact`), one per whole patch
    (classes, h - patch + 1, w - patch + 1).

    OpenVINO compiles the graph for the shape of the windows it is given, one shape at a time: a
    static shape lets it plan its buffers, which holds about 130 MB less at 1024 px than a free shape
    and maps as fast; all windows of a raster share one shape, and a new shape costs a fraction of a
    second's compilation."""

    margin, reduction = 0, 1

    def __init__(
        self, graph: Path, kind: str, threads: int | None = None, align: int = ALIGN, patch: int = 1,
        exact: bool = False,
    ):  # fmt: skip
        if kind not in GRAPH_ENGINES:
            raise OptionError(f"unknown decoder engine {kind!r}: choose one of {', '.join(GRAPH_ENGINES)}")
        self.graph, self.name, self.threads = Path(graph), kind, threads or default_threads()
        self.align, self.shrink, self.exact = align, patch - 1, exact
        self._shape, self._compiled, self._session = None, None, None
        if kind == "onnx":
            self._session = onnx_session(self.graph, self.threads)
        else:
            import openvino

            self._core = openvino.Core()
            self._network = self._core.read_model(str(self.graph))

    def _logits(self, x: np.ndarray) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, {"images": x})[0]
        if x.shape != self._shape:
            self._compiled = None  # the last shape's buffers go before the next shape's come
            network = self._network.clone()
            network.reshape(list(x.shape))
            config = {"INFERENCE_PRECISION_HINT": "bf16" if self.name.endswith("bf16") else "f32"}
            config.update(INFERENCE_NUM_THREADS=self.threads, PERFORMANCE_HINT="LATENCY")
            self._compiled, self._shape = self._core.compile_model(network, "CPU", config), x.shape
        return np.asarray(self._compiled(x)[0], np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        a = self.align
        pad = ((0, 0), (0, 0), (0, -h % a), (0, -w % a))
        if any(p for _, p in pad):
            x = np.pad(x, pad, mode="reflect" if -h % a < h and -w % a < w else "edge")
        return self._logits(np.ascontiguousarray(x))[0, :, : h - self.shrink, : w - self.shrink]


def machine() -> str:
    """A short hash of the CPU, its instruction sets and the libraries, not the thread count: one
    choice for a machine, so that one process and the ranks of a torchrun world map alike."""
    parts = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        parts = next((x for x in lines if x.startswith("model name")), "")
        parts += next((x for x in lines if x.startswith("flags")), "")
    except OSError:
        pass
    versions = []
    for name in ("torch", "onnxruntime", "openvino"):
        try:
            versions.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            versions.append("none")
    return hashlib.sha256("|".join([parts, *versions]).encode()).hexdigest()[:12]


def run_key(run_dir: str | Path) -> str | None:
    """The key of a run's weights and settings (the content of model.safetensors and config.json);
    None when the folder has none to key (an exported model)."""
    run_dir = Path(run_dir)
    try:
        return hashlib.sha256(
            f"{file_digest(run_dir / 'model.safetensors')}|{file_digest(run_dir / 'config.json')}".encode()
        ).hexdigest()[:32]
    except OSError:
        return None


def graph_path(key: str) -> Path:
    """Where the ONNX graph of the decoder with weights `key` is cached."""
    return cache_root() / "engines" / f"decoder-{key}.onnx"


def choice_path(key: str) -> Path:
    """Where the engine chosen for weights `key` on this machine is remembered."""
    return cache_root() / "engines" / f"decoder-{key}-{machine()}.json"


def remembered_choice(key: str) -> str | None:
    """The engine measured earlier for weights `key` on this machine, if any."""
    try:
        return json.loads(choice_path(key).read_text())["engine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_graph_engine(run_dir: str | Path, engine: str = "auto") -> GraphEngine | None:
    """The run's decoder on a graph engine without PyTorch, when the cache allows: with `auto` the
    engine chosen for the run on this machine if it is a graph engine, else the one asked for; None
    when the graph, or the choice, is still to be made (or PyTorch was chosen or asked for)."""
    key = run_key(run_dir)
    if key is None or not graph_path(key).is_file():
        return None
    kind = remembered_choice(key) if engine == "auto" else engine
    if kind not in GRAPH_ENGINES:
        return None
    try:
        return GraphEngine(graph_path(key), kind)
    except Exception as exc:  # a damaged cache file: the run itself is still good, and loads as usual
        log.warning("cached graph %s is unusable (%s): loading the run", graph_path(key), exc)
        return None
