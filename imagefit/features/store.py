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
    """Write an embedding set held in memory as `path` (.safetensors added when missing) and its sidecar."""
    vectors = np.asarray(data.vectors, np.float32)
    writer = EmbeddingWriter(path, data.root, data.model, vectors.shape[1])
    writer.add(data.paths, data.digests, vectors)
    writer.skipped = list(data.skipped)
    return writer.close()


def embeddings_file(path: str | os.PathLike) -> Path:
    """The .safetensors file of an embedding pair named by either file or by the name given to save."""
    path = Path(path)
    for candidate in (path.with_name(path.name + ".safetensors"), path.with_suffix(".safetensors")):
        if path.suffix != ".safetensors" and candidate.is_file() and sidecar(candidate).is_file():
            return candidate
    return path


def load_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """Read an embedding file written by save_embeddings (named by either file of the pair)."""
    from safetensors.numpy import load_file

    path = embeddings_file(path)
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


class EmbeddingWriter:
    """Writes an embedding file a batch at a time, so that memory follows the batch, not the folder.

    Vectors go to a temporary file as they come; `close` puts the safetensors header in front of
    them (the format is a little-endian header length, a JSON header, then the raw tensor bytes)
    and moves the result in place atomically, then writes the sidecar.
    """

    def __init__(self, path: str | os.PathLike, root: str, model: dict, dim: int):
        self.path = Path(path)
        if self.path.suffix != ".safetensors":
            self.path = self.path.with_name(self.path.name + ".safetensors")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.root, self.model = root, model
        self.paths: list[str] = []
        self.digests: list[str] = []
        self.skipped: list[dict] = []
        self.dim = dim
        self._raw = self.path.with_name(f".{self.path.name}.{os.getpid()}.raw")
        self._fh = open(self._raw, "wb")  # noqa: SIM115 - closed in close()

    def add(self, paths: list[str], digests: list[str], vectors: np.ndarray) -> None:
        """Append rows."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        self._fh.write(vectors.tobytes())
        self.paths.extend(paths)
        self.digests.extend(digests)

    def close(self) -> Path:
        """Write the embedding file and its sidecar; the temporary file is removed."""
        self._fh.close()
        try:
            write_with(self.path, self._assemble)
        finally:
            self._raw.unlink(missing_ok=True)
        meta = {"format": FORMAT, "root": self.root, "model": self.model, "paths": self.paths}
        write_json(sidecar(self.path), {**meta, "digests": self.digests, "skipped": self.skipped})
        return self.path

    def _assemble(self, target: Path) -> None:
        size = len(self.paths) * self.dim * 4
        tensor = {"dtype": "F32", "shape": [len(self.paths), self.dim], "data_offsets": [0, size]}
        header = json.dumps({"__metadata__": {"format": FORMAT}, "vectors": tensor}).encode()
        header += b" " * (-len(header) % 8)
        with open(target, "wb") as out, open(self._raw, "rb") as raw:
            out.write(len(header).to_bytes(8, "little") + header)
            while chunk := raw.read(1 << 24):
                out.write(chunk)


def mapped_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """An embedding file whose vectors stay on disk (memory-mapped) until rows are used."""
    path = embeddings_file(path)
    with open(path, "rb") as fh:
        length = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(length))
    info = header["vectors"]
    if info["dtype"] != "F32" or len(info["shape"]) != 2:
        raise DataError(f"{path} does not hold a float32 matrix of vectors")
    rows, dim = info["shape"]
    vectors = (
        np.memmap(path, np.float32, "r", 8 + length + info["data_offsets"][0], (rows, dim)) if rows else None
    )
    meta = json.loads(sidecar(path).read_text(encoding="utf-8"))
    vectors = vectors if vectors is not None else np.zeros((0, dim), np.float32)
    return EmbeddingSet(vectors, meta["paths"], meta["root"], meta["model"], meta["digests"], meta["skipped"])
