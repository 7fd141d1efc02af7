"""imagefit.dedupe: groups of near-duplicate images (re-saved, resized or mirrored copies).

Candidates come from the same embeddings as `imagefit features` (mirror-averaged, so a flipped
copy embeds alike) and a loose similarity. Each candidate pair is then compared again with both
images first brought down to the smaller one's resolution, so a half-size copy is not penalised
for its lost detail; pairs at or above `threshold` are joined into groups.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imagefit.data.images import open_image
from imagefit.data.paths import collect_inputs
from imagefit.data.transforms import eval_transform
from imagefit.errors import OptionError
from imagefit.features.extract import FeatureExtractor
from imagefit.features.neighbours import NeighbourIndex, connected_groups
from imagefit.models.registry import DEFAULT_BACKBONE
from imagefit.search.embed import make_extractor

CANDIDATE_SIMILARITY = 0.75


def dedupe(
    folder: str | os.PathLike,
    threshold: float = 0.9,
    model: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    neighbours: int = 10,
    **options,
) -> list[list[Path]]:
    """Groups (each sorted, two or more files) of near-duplicate images under `folder`."""
    if not 0.0 < threshold <= 1.0:
        raise OptionError(f"--threshold is a cosine similarity in (0, 1], got {threshold}")
    paths = collect_inputs([folder])
    extractor, _ = make_extractor(model, weights, flip=True, **options)
    found = extractor(paths, desc="embed")
    paths = [p for p, ok in zip(found.paths, found.ok, strict=True) if ok]
    if len(paths) < 2:
        return []
    k = min(neighbours + 1, len(paths))
    distance, index = NeighbourIndex(found.vectors, "cosine").search(found.vectors, k)
    pairs = sorted(
        {
            (min(i, int(j)), max(i, int(j)))
            for i, (row_d, row_j) in enumerate(zip(distance, index, strict=True))
            for d, j in zip(row_d, row_j, strict=True)
            if j != i and 1.0 - d >= min(CANDIDATE_SIMILARITY, threshold)
        }
    )
    similarity = _matched_similarities(extractor, [(paths[i], paths[j]) for i, j in pairs])
    return connected_groups([p for p, s in zip(pairs, similarity, strict=True) if s >= threshold], paths)


def _matched_similarities(extractor: FeatureExtractor, pairs: list[tuple[Path, Path]]) -> np.ndarray:
    """Cosine similarity of each pair, both images embedded at the smaller one's resolution."""
    if not pairs:
        return np.zeros(0)
    engine = extractor.engine(2 * len(pairs))
    transform = eval_transform(extractor.data_config)
    out = []
    for start in range(0, len(pairs), 16):
        batch = [_matched_pair(a, b, transform) for a, b in pairs[start : start + 16]]
        vectors = engine(torch.stack([x for pair in batch for x in pair]))
        u, v = vectors[0::2], vectors[1::2]
        out.append(np.sum(u * v, 1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1) + 1e-12))
    return np.concatenate(out)


def _matched_pair(a: Path, b: Path, transform) -> tuple[torch.Tensor, torch.Tensor]:
    images = [open_image(a), open_image(b)]
    side = min(min(img.size) for img in images)
    return tuple(transform(_shrink(img, side)) for img in images)


def _shrink(img: Image.Image, side: int) -> Image.Image:
    scale = side / min(img.size)
    if scale >= 1.0:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)
