"""Decoders (U-Net, FPN, DeepLabV3+) and small CNNs' patch classifiers on the fastest engine the CPU
offers, chosen by measurement.

A decoder's network is exported once to ONNX with free height and width (the window is padded by
reflection to the encoder's stride here, outside the graph) and run by ONNX Runtime or OpenVINO,
in fp32 or, where the CPU computes it natively (avx512_bf16 or AMX), in bf16; a small CNN's dense
network is exported as it is (exact: one logit per whole patch, nothing to pad). With `--engine auto`
the centre of the first window of a map (PROBE pixels a side) is run by every candidate, one at a
time: one whose classes agree with PyTorch fp32 on fewer than AGREEMENT of its pixels is refused, the
fastest of the rest is kept, and the choice is remembered for this run's weights on this machine (as
`features` remembers its engines), where later maps of a decoder find it and the graph without PyTorch
(`graph_engine`). `bench/maps_engines.py` checks the choice against the labels of the validation tile.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from torch import nn

from imagefit.data.atomic import write_json
from imagefit.errors import WriteError
from imagefit.features.cache import cache_write_failed
from imagefit.features.engines import export_onnx
from imagefit.features.machine import native_bf16
from imagefit.heap import release_memory
from imagefit.maps.mapping.defaults import ALIGN
from imagefit.maps.mapping.dense_networks import DenseDecoder
from imagefit.maps.mapping.graph_engine import (
    GRAPH_ENGINES,
    GraphEngine,
    choice_path,
    graph_path,
    remembered_choice,
)

log = logging.getLogger(__name__)

AGREEMENT = 0.995  # least share of a window's pixels whose class a candidate must give as fp32 PyTorch does
PROBE = 512  # side of the centre of the first window the candidates are measured on (262,144 pixels)


class GraphDecoderEngine(GraphEngine):
    """A dense network (a decoder, or a small CNN's patch classifier) on a graph engine: its graph
    exported once per weights (`key`: a run's key, else a digest of the weights) and kept in the
    cache, where later maps of a decoder find it without PyTorch."""

    def __init__(self, decoder: nn.Module, kind: str, threads: int | None = None, key: str | None = None):
        align = ALIGN if isinstance(decoder, DenseDecoder) else 1  # a decoder's encoder stride
        with tempfile.TemporaryDirectory(prefix="imagefit-decoder-") as tmp:
            graph = decoder_graph(decoder, Path(tmp), key)
            super().__init__(graph, kind, threads, align=align, patch=decoder.patch[0], exact=decoder.exact)


def decoder_graph(decoder: nn.Module, scratch: Path, key: str | None = None) -> Path:
    """The ONNX graph (free height and width) of a decoder's network, or of a small CNN's dense
    network: the cached one for weights `key`, exported there first if missing; in `scratch` when the
    cache cannot be written."""
    axes = {"images": {2: "h", 3: "w"}, "logits": {2: "rows", 3: "cols"}}
    net = decoder.model if isinstance(decoder, DenseDecoder) else decoder  # a decoder pads outside
    chans = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
    side = 2 * ALIGN if isinstance(decoder, DenseDecoder) else decoder.patch[0] + 8
    cached = graph_path(key or _weights_key(decoder))
    if cached.is_file():
        return cached

    def export(path: Path) -> None:
        export_onnx(net.eval(), (chans, side, side), path, "logits", False, axes=axes)

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        export(cached)
        return cached
    except (OSError, WriteError) as exc:
        cache_write_failed(exc)
    export(scratch / "decoder.onnx")
    return scratch / "decoder.onnx"


class ChosenDecoderEngine:
    """PyTorch or a graph engine for a dense network (a decoder, or a small CNN's patch classifier),
    chosen on the first window it maps (or remembered)."""

    def __init__(self, decoder: nn.Module, torch_engine, key: str | None = None):
        self.decoder, self.torch_engine, self.engine = decoder, torch_engine, None
        self.exact, self.margin, self.reduction = decoder.exact, decoder.margin, decoder.reduction
        self.key = key or _weights_key(decoder)
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
        return self.torch_engine if kind == "torch" else GraphDecoderEngine(self.decoder, kind, key=self.key)

    def _choose(self, x: np.ndarray) -> np.ndarray:
        probe = centre(x, PROBE)
        reference, seconds = _timed(self.torch_engine, probe)
        labels, pixels = reference.argmax(0), probe[0, 0].size
        del reference
        rates, agreement, errors = {"torch": pixels / seconds}, {"torch": 1.0}, {}
        best, kept = "torch", self.torch_engine
        for kind in candidates(exact=self.exact):
            try:
                engine = GraphDecoderEngine(self.decoder, kind, key=self.key)
                out, seconds = _timed(engine, probe)
            except Exception as exc:  # an engine this model or machine cannot run is skipped
                errors[kind] = f"{exc.__class__.__name__}: {exc}"
                continue
            rates[kind] = pixels / seconds
            agreement[kind] = float((out.argmax(0) == labels).mean())
            if agreement[kind] >= AGREEMENT and rates[kind] > rates[best]:
                best, kept = kind, engine
            del engine, out  # a candidate's memory goes before the next one's comes (unless kept)
        shown = ", ".join(f"{k} {rates[k] / 1e6:.3f} Mpx/s ({agreement[k]:.2%})" for k in rates)
        log.info("decoder engine %s chosen on a %dx%d window: %s", best, *probe.shape[2:], shown)
        record = {"engine": best, "mpx_per_s": rates, "agreement": agreement, "errors": errors}
        try:
            write_json(choice_path(self.key), {**record, "agreement_threshold": AGREEMENT})
        except WriteError as exc:
            cache_write_failed(exc)
        self.engine, self.name = kept, best
        release_memory()  # the candidates' freed buffers go back to the system before mapping starts
        return self.engine(x)


def centre(x: np.ndarray, side: int) -> np.ndarray:
    """The centre of window `x` (1, bands, h, w), at most `side` pixels a side."""
    h, w = x.shape[2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(x[:, :, top : top + side, left : left + side])


def candidates(exact: bool = False) -> list[str]:
    """The graph engines worth measuring on this CPU: bf16 only where it computes bf16 natively, and
    not for an `exact` network (a small CNN's dense map gives the classes of each patch classified on
    its own, as `--naive` does: fp32 keeps that; bf16 was slower for `larger_model` anyway)."""
    return [k for k in GRAPH_ENGINES if not k.endswith("bf16") or (native_bf16() and not exact)]


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
