"""Near-duplicates and leakage: groups of copies of one picture, each copy compared with the one kept.

The fast search pairs embeddings closer than a threshold (the audit's features, searched with
`NeighbourIndex`), then keeps the pairs whose small grey thumbnails correlate: photos of the same
texture embed alike but differ pixel by pixel. The thorough search is `imagefit dedupe`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.audit.items import LabelledImages

NEAR_DUPLICATE, LEAKAGE, CROSS_CLASS = "near_duplicate", "leakage", "cross_class"
_SPLIT_ORDER = {"train": 0, "all": 0, "valid": 1, "test": 2}
PIXEL_SIDE = 32  # thumbnails compared pixel by pixel to confirm that two similar embeddings are one picture
SAME_PICTURE = 0.9  # correlation of those thumbnails from which two images are one picture


@dataclass
class Copy:
    """One image of a duplicate group beside the group's first image (the one a person keeps)."""

    kind: str  # NEAR_DUPLICATE, LEAKAGE (another split) or CROSS_CLASS (same split, another class)
    path: Path
    like: Path
    label: int  # -1 when unlabelled (test/)
    like_label: int
    similarity: float  # cosine similarity of their embeddings (NaN when not embedded)


def classify_groups(
    groups: list[list[Path]], items: LabelledImages, vectors: dict[Path, np.ndarray]
) -> list[Copy]:
    """A Copy for each image of each group but its first (train before valid before test)."""
    where = {p: (s, int(y)) for p, s, y in zip(items.paths, items.splits, items.labels, strict=True)}
    where.update({p: ("test", -1) for p in items.unlabelled})
    copies = []
    for group in groups:
        members = sorted(group, key=lambda p: (_SPLIT_ORDER[where.get(p, ("test", -1))[0]], str(p)))
        first = members[0]
        split0, label0 = where.get(first, ("test", -1))
        for path in members[1:]:
            split, label = where.get(path, ("test", -1))
            if split != split0:
                kind = LEAKAGE
            elif label != label0 and min(label, label0) >= 0:
                kind = CROSS_CLASS
            else:
                kind = NEAR_DUPLICATE
            copies.append(Copy(kind, path, first, label, label0, _cosine(vectors, path, first)))
    return copies


def _cosine(vectors: dict[Path, np.ndarray], a: Path, b: Path) -> float:
    if a not in vectors or b not in vectors:
        return float("nan")
    u, v = vectors[a], vectors[b]
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12))


def similar_pairs(vectors: np.ndarray, threshold: float, neighbours: int = 5) -> list[tuple[int, int, float]]:
    """(i, j, cosine similarity) of each pair of embeddings at or above `threshold`, i < j."""
    from imagefit.features.neighbours import NeighbourIndex

    if len(vectors) < 2:
        return []
    k = min(neighbours + 1, len(vectors))
    distance, index = NeighbourIndex(vectors, "cosine").search(vectors, k)
    found = {}
    for i, (row_d, row_j) in enumerate(zip(distance, index, strict=True)):
        for d, j in zip(row_d, row_j, strict=True):
            if int(j) != i and 1.0 - d >= threshold:
                found[(min(i, int(j)), max(i, int(j)))] = float(1.0 - d)
    return [(i, j, s) for (i, j), s in sorted(found.items())]


def same_picture(a: Path, b: Path, side: int = PIXEL_SIDE) -> float:
    """Correlation of two images' small grey thumbnails (the better of b and its mirror image), -1..1."""
    from PIL import ImageOps

    from imagefit.data.images import open_image

    def grey(path: Path, mirror: bool = False) -> np.ndarray:
        img = open_image(path, min_size=side).convert("L").resize((side, side))
        v = np.asarray(ImageOps.mirror(img) if mirror else img, np.float32).ravel()
        v = v - v.mean()
        return v / (np.linalg.norm(v) + 1e-6)

    u = grey(a)
    return float(max(u @ grey(b), u @ grey(b, mirror=True)))
