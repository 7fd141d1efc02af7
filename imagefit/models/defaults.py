"""Names the command line shows before any model code is imported."""

DEFAULT_BACKBONE = "efficientnet_lite0"
WEIGHT_KEYWORDS = ("auto", "hub", "none")  # --weights values that are not the path of a file
TORCH_ENGINES = ("eager", "channels_last", "bf16")  # PyTorch variants, by name
OPENVINO_ENGINES = ("openvino", "openvino-bf16", "openvino-int8")  # OpenVINO on the exported graph
INT8_ENGINES = ("onnx-int8", "openvino-int8")  # the graph quantised on a run's training images
ENGINES = (
    "auto",
    "torch",
    *TORCH_ENGINES,
    "onnx",
    "onnx-int8",
    *OPENVINO_ENGINES,
)  # 'torch': PyTorch's default
# What each engine computes in: vectors of different precisions never share a feature cache.
PRECISION = {"bf16": "bf16", "openvino-bf16": "bf16", "onnx-int8": "int8", "openvino-int8": "int8"}


def precision_of(engine: str) -> str:
    """'fp32', 'bf16' or 'int8': what `engine` computes in ('torch' and 'auto' count as fp32 on a CPU)."""
    return PRECISION.get(engine, "fp32")
