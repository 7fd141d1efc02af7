"""The map command's defaults, light enough for the command line to read without loading a model."""

from __future__ import annotations

DEFAULT_WINDOW = 1024  # pixels on a side of the windows a raster is read and mapped in
# how a window's logits are computed (auto on a CPU: ONNX Runtime for small CNNs, for decoders the
# fastest of PyTorch, ONNX Runtime and OpenVINO that maps as PyTorch does, measured)
ENGINES = ("auto", "torch", "onnx", "openvino", "openvino-bf16")
ALIGN = 32  # the total stride of a decoder's encoder: decoders take window sides that are multiples of it
