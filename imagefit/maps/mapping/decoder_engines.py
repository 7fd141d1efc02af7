"""Decoders (U-Net, FPN, DeepLabV3+) on the fastest engine the CPU offers, chosen by measurement.

A decoder's network is exported once to ONNX with free height and width (the window is padded by
reflection to the encoder's stride here, outside the graph) and run by ONNX Runtime or OpenVINO,
in fp32 or, where the CPU computes it natively (avx512_bf16 or AMX), in bf16. With `--engine auto`
the first window of a map is run by every candidate: one whose classes agree with PyTorch fp32 on
fewer than AGREEMENT of the window's pixels is refused, the fastest of the rest is kept, and the
choice is remembered for this run's weights on this machine (as `features` remembers its engines).
`bench/maps_engines.py` checks the choice against the labels of the validation tile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imagefit.data.atomic import write_json
from imagefit.errors import OptionError, WriteError
from imagefit.features.cache import cache_root, cache_write_failed
from imagefit.features.engines import export_onnx, onnx_session
from imagefit.maps.mapping.dense_networks import ALIGN, DenseDecoder

log = logging.getLogger(__name__)

GRAPH_ENGINES = ("onnx", "openvino", "openvino-bf16")
AGREEMENT = 0.995  # least share of a window's pixels whose class a candidate must give as fp32 PyTorch does


def native_bf16() -> bool:
    """True when the CPU computes bf16 natively (avx512_bf16 or AMX)."""
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split(":", 1)[1].split()))


class GraphDecoderEngine:
    """A decoder's exported graph on ONNX Runtime or OpenVINO: logits (classes, h, w) of a window.

    The graph is exported once per weights and kept in the cache (a mapping process then neither
    exports nor holds the exporter's memory). OpenVINO compiles it for the shape of the windows it is
    given, one shape at a time: a static shape lets it plan its buffers, which holds about 130 MB
    less at 1024 px than a free shape and maps as fast; all windows of a raster share one shape, and
    a new shape costs a fraction of a second's compilation."""

    exact, margin, reduction = False, 0, 1

    def __init__(self, decoder: DenseDecoder, kind: str, threads: int | None = None):
        if kind not in GRAPH_ENGINES:
            raise OptionError(f"unknown decoder engine {kind!r}")
        self.name, self.threads = kind, threads or torch.get_num_threads()
        self._shape, self._compiled = None, None
        with tempfile.TemporaryDirectory(prefix="imagefit-decoder-") as tmp:
            path = decoder_graph(decoder, Path(tmp))
            if kind == "onnx":
                session = onnx_session(path, self.threads)
                self._run = lambda x: session.run(None, {"images": x})[0]
            else:
                import openvino

                self._core = openvino.Core()
                self._graph = self._core.read_model(str(path))
                self._run = self._openvino

    def _openvino(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:
            self._compiled = None  # the last shape's buffers go before the next shape's come
            graph = self._graph.clone()
            graph.reshape(list(x.shape))
            config = {"INFERENCE_PRECISION_HINT": "bf16" if self.name.endswith("bf16") else "f32"}
            config.update(INFERENCE_NUM_THREADS=self.threads, PERFORMANCE_HINT="LATENCY")
            self._compiled, self._shape = self._core.compile_model(graph, "CPU", config), x.shape
        return np.asarray(self._compiled(x)[0], np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        pad = ((0, 0), (0, 0), (0, -h % ALIGN), (0, -w % ALIGN))
        if any(p for _, p in pad):
            x = np.pad(x, pad, mode="reflect" if -h % ALIGN < h and -w % ALIGN < w else "edge")
        return self._run(np.ascontiguousarray(x))[0, :, :h, :w]


def decoder_graph(decoder: DenseDecoder, scratch: Path) -> Path:
    """The decoder's ONNX graph (free height and width): the cached one for these weights, exported
    there first if missing; in `scratch` when the cache cannot be written."""
    axes = {"images": {2: "h", 3: "w"}, "logits": {2: "rows", 3: "cols"}}
    chans = next(m for m in decoder.model.modules() if isinstance(m, nn.Conv2d)).in_channels
    key = hashlib.sha256(
        f"{_weights_key(decoder)}|{type(decoder.model).__name__}|{chans}|{torch.__version__}".encode()
    ).hexdigest()[:32]
    cached = cache_root() / "engines" / f"decoder-{key}.onnx"
    if cached.is_file():
        return cached

    def export(path: Path) -> None:
        export_onnx(decoder.model.eval(), (chans, 2 * ALIGN, 2 * ALIGN), path, "logits", False, axes=axes)

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        export(cached)
        return cached
    except (OSError, WriteError) as exc:
        cache_write_failed(exc)
    export(scratch / "decoder.onnx")
    return scratch / "decoder.onnx"


class ChosenDecoderEngine:
    """PyTorch or a graph engine for a decoder, chosen on the first window it maps (or remembered)."""

    exact, margin, reduction = False, 0, 1

    def __init__(self, decoder: DenseDecoder, torch_engine):
        self.decoder, self.torch_engine, self.engine = decoder, torch_engine, None
        self.key = _weights_key(decoder)
        self.name = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.engine is None:
            kind = remembered_choice(self.key)
            if kind is None:
                return self._choose(x)
            self.use(kind)
        return self.engine(x)

    def decide(self, x: np.ndarray) -> str:
        """The engine for these weights: remembered, or measured now on window `x`."""
        if self.engine is None:
            self(x)
        return self.name

    def use(self, kind: str) -> None:
        """Map with engine `kind` from now on (one decided elsewhere: by rank 0 of a torchrun world)."""
        if kind != self.name:
            self.engine, self.name = self._build(kind), kind

    def _build(self, kind: str):
        return self.torch_engine if kind == "torch" else GraphDecoderEngine(self.decoder, kind)

    def _choose(self, x: np.ndarray) -> np.ndarray:
        reference, seconds = _timed(self.torch_engine, x)
        rates, agreement, outputs, errors = {"torch": x[0, 0].size / seconds}, {"torch": 1.0}, {}, {}
        for kind in candidates():
            try:
                engine = GraphDecoderEngine(self.decoder, kind)
                outputs[kind], seconds = _timed(engine, x)
            except Exception as exc:  # an engine this model or machine cannot run is skipped
                errors[kind] = f"{exc.__class__.__name__}: {exc}"
                continue
            rates[kind] = x[0, 0].size / seconds
            agreement[kind] = float((outputs[kind].argmax(0) == reference.argmax(0)).mean())
        good = [k for k in rates if agreement[k] >= AGREEMENT]
        best = max(good, key=rates.get)
        shown = ", ".join(f"{k} {rates[k] / 1e6:.3f} Mpx/s ({agreement[k]:.2%})" for k in rates)
        log.info("decoder engine %s chosen on a %dx%d window: %s", best, *x.shape[2:], shown)
        record = {"engine": best, "mpx_per_s": rates, "agreement": agreement, "errors": errors}
        try:
            write_json(choice_path(self.key), {**record, "agreement_threshold": AGREEMENT})
        except WriteError as exc:
            cache_write_failed(exc)
        self.engine, self.name = self._build(best), best
        return reference if best == "torch" else outputs[best]


def candidates() -> list[str]:
    """The graph engines worth measuring on this CPU: bf16 only where it computes bf16 natively."""
    return [k for k in GRAPH_ENGINES if not k.endswith("bf16") or native_bf16()]


def _timed(engine, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Outputs of a warm-up run, and the seconds of a second run."""
    out = engine(x)
    started = time.perf_counter()
    engine(x)
    return out, time.perf_counter() - started


def _weights_key(decoder: nn.Module) -> str:
    """A digest of the decoder's weights: a choice is measured for these weights."""
    h = hashlib.sha256()
    for name, tensor in decoder.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


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
    versions = [torch.__version__]
    for name in ("onnxruntime", "openvino"):
        try:
            versions.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            versions.append("none")
    return hashlib.sha256("|".join([parts, *versions]).encode()).hexdigest()[:12]


def choice_path(key: str) -> Path:
    """Where the choice for these weights on this machine is remembered."""
    return cache_root() / "engines" / f"decoder-{key}-{machine()}.json"


def remembered_choice(key: str) -> str | None:
    """The engine measured earlier for these weights on this machine, if any."""
    try:
        return json.loads(choice_path(key).read_text())["engine"]
    except (OSError, ValueError, KeyError):
        return None
