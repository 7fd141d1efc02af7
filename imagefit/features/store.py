"""Embedding files: vectors in safetensors, with a JSON sidecar naming the images and the model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json, write_with
from imagefit.errors import DataError

FORMAT = "imagefit-embeddings"


@dataclass
class EmbeddingSet:
    """Vectors for images (paths relative to `root`) and a record of how they were made."""

    vectors: np.ndarray  # (n, dim) float32
    paths: list[str]  # relative to root, POSIX style
    root: str
    model: dict  # source, backbone, arch, weights, layer, pool, flip, key, data_config
    digests: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def absolute(self, i: int) -> Path:
        """The file behind row `i`."""
        return Path(self.root) / self.paths[i]


def sidecar(path: str | os.PathLike) -> Path:
    """The JSON file beside a .safetensors embedding file."""
    return Path(path).with_suffix(".json")


def save_embeddings(path: str | os.PathLike, data: EmbeddingSet) -> Path:
    """Write `path` (.safetensors added when missing) and its sidecar, each atomically."""
    from safetensors.numpy import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    vectors = np.ascontiguousarray(data.vectors, dtype=np.float32)
    write_with(path, lambda p: save_file({"vectors": vectors}, str(p), metadata={"format": FORMAT}))
    meta = {
        "format": FORMAT,
        "root": data.root,
        "model": data.model,
        "paths": data.paths,
        "digests": data.digests,
        "skipped": data.skipped,
    }
    write_json(sidecar(path), meta)
    return path


def load_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """Read an embedding file written by save_embeddings."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file() or not sidecar(path).is_file():
        raise DataError(
            f"{path} is not an embedding file (with {sidecar(path).name} beside it): "
            "make one with imagefit features"
        )
    try:
        meta = json.loads(sidecar(path).read_text(encoding="utf-8"))
        vectors = load_file(str(path))["vectors"] if isinstance(meta, dict) else None
    except Exception as exc:
        raise DataError(f"{path} is damaged ({exc.__class__.__name__}: {exc}): make it again") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{sidecar(path)} is not an imagefit embedding sidecar")
    if len(vectors) != len(meta["paths"]):
        raise DataError(f"{path} holds {len(vectors)} vectors for {len(meta['paths'])} paths: rewrite it")
    return EmbeddingSet(
        vectors, meta["paths"], meta["root"], meta["model"], meta.get("digests", []), meta.get("skipped", [])
    )
