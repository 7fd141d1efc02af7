"""The map command's defaults, light enough for the command line to read without loading a model."""

from __future__ import annotations

DEFAULT_WINDOW = 1024  # pixels on a side of the windows a raster is read and mapped in
ENGINES = (
    "auto",
    "torch",
    "onnx",
)  # how a window's logits are computed (auto: ONNX Runtime for small CNNs on CPU)
