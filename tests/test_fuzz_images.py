"""Property test: random and mutated bytes given to the image loader either decode or are skipped cleanly.

The only documented failure is ImageReadError (the loaders turn it into a skip with the reason); any
other exception, or a decode that takes seconds, fails the test. Examples are bounded so CI stays fast.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagefit.data.images import ImageReadError, open_image
from imagefit.data.probe import probe


def _seed_files() -> dict[str, bytes]:
    """Small valid files of every format the loader reads: the material mutations start from."""
    import tifffile

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = {}
    for ext, fmt, mode, kwargs in [
        (".jpg", "JPEG", "RGB", {"quality": 80}),
        (".jpg", "JPEG", "CMYK", {}),
        (".png", "PNG", "RGBA", {}),
        (".png", "PNG", "P", {}),
        (".gif", "GIF", "P", {}),
        (".bmp", "BMP", "RGB", {}),
        (".tif", "TIFF", "RGB", {}),
        (".webp", "WEBP", "RGB", {}),
        (".ppm", "PPM", "RGB", {}),
    ]:
        buffer = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buffer, fmt, **kwargs)
        out[f"{fmt.lower()}-{mode}{ext}"] = buffer.getvalue()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb.astype(np.float32), photometric="rgb")
    out["float.tif"] = buffer.getvalue()
    return out


SEEDS = _seed_files()
NAMES = sorted(SEEDS)


@pytest.fixture(autouse=True)
def _small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # a mutated header may claim a huge size: the documented limit keeps each example small and fast
    monkeypatch.setenv("IMAGEFIT_MAX_PIXELS", str(4_000_000))


def _load(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            img = open_image(path, min_size=16 if len(data) % 2 else None)
        except ImageReadError as exc:
            assert str(path) in str(exc) and exc.kind
        else:
            assert img.mode == "RGB" and img.size[0] > 0 and img.size[1] > 0
            assert img.size[0] * img.size[1] <= 4_000_000
        check = probe(path)  # never raises: a verdict for every file
        assert check.ok or str(path) in check.problem


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(NAMES))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "zero-run"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            data = data[:at]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at : at + 16] = bytes(min(16, len(data) - at))
    return name, bytes(data)


FUZZ = settings(
    max_examples=int(os.environ.get("IMAGEFIT_FUZZ_EXAMPLES", "120")),
    deadline=3000,  # ms per example: a hang or a pathological decode fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: CI stays reproducible
)


@FUZZ
@given(mutated())
def test_mutated_images_decode_or_are_skipped(case: tuple[str, bytes]) -> None:
    _load(*case)


@FUZZ
@given(st.sampled_from([".jpg", ".png", ".tif", ".gif", ".webp", ".bmp"]), st.binary(max_size=2048))
def test_random_bytes_are_skipped_cleanly(ext: str, data: bytes) -> None:
    _load("random" + ext, data)


@FUZZ
@given(st.sampled_from(NAMES), st.data())
def test_every_prefix_of_a_valid_file_is_handled(name: str, data) -> None:
    full = SEEDS[name]
    _load(name, full[: data.draw(st.integers(0, len(full)))])
