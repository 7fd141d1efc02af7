"""ONNX Runtime sessions, without importing torch (a prediction of a few images starts fast)."""

from __future__ import annotations

import os
from pathlib import Path

from imagefit.errors import ModelError


def onnx_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session tuned for sharing the cores with decode workers.

    Its threads sleep instead of spinning between operators: spinning doubled the time of a
    batch here while a decode worker wanted the same cores (bench/README.md).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"cannot load {path} as an ONNX model ({first}): re-export it") from exc
