"""Training state in one safetensors file: tensors as tensors, everything else as JSON in its header.

A checkpoint holds nested dicts and lists (model, optimizer and scheduler state dicts, RNG states,
history). Tensors are stored under their path in the structure (`model/head.weight`,
`optimizer/state/3/exp_avg`); the structure itself, with tensors replaced by references, is JSON in
the file's metadata. Nothing is pickled, so loading a checkpoint never runs code. One file means
one atomic rename: a checkpoint is either the old one or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from imagefit.data.atomic import write_with
from imagefit.errors import ModelError

_KEY = "imagefit_state"


def save_state(path: str | Path, state: dict) -> None:
    """Write `state` to `path` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, "", tensors)
    metadata = {_KEY: json.dumps(tree), "format": "pt"}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_state(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a state written by `save_state`."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no checkpoint at {path}: nothing to resume from")
    try:
        with safe_open(str(path), "pt") as fh:
            raw = (fh.metadata() or {}).get(_KEY)
        if raw is None:
            raise ModelError(f"{path} is not an imagefit checkpoint (no training state in its header)")
        return _decode(json.loads(raw), load_file(str(path), device=str(device)))
    except ModelError:
        raise
    except Exception as exc:  # safetensors + JSON: a damaged file fails to parse, never runs code
        raise ModelError(
            f"{path} is damaged ({exc.__class__.__name__}: {exc}): it cannot be resumed"
        ) from exc


def _encode(obj, path: str, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, torch.Tensor):
        if path in tensors:
            raise ValueError(f"two tensors would be stored as {path}")
        # cloned so that tied or overlapping tensors are stored as separate, contiguous arrays
        tensors[path] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, f"{path}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} at {path or '/'} in a checkpoint")


def _decode(tree, tensors: dict[str, torch.Tensor]):
    if isinstance(tree, list):
        return [_decode(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__ndarray__" in tree:
        return np.array(tree["__ndarray__"], dtype=tree["dtype"])
    if "__tuple__" in tree:
        return tuple(_decode(v, tensors) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {k: _decode(v, tensors) for k, v in tree["__items__"]}
    return {k: _decode(v, tensors) for k, v in tree.items()}
