"""Names the command line shows before any model code is imported."""

DEFAULT_BACKBONE = "efficientnet_lite0"
WEIGHT_KEYWORDS = ("auto", "hub", "none")  # --weights values that are not the path of a file
TORCH_ENGINES = ("eager", "channels_last", "bf16")  # PyTorch variants, by name
OPENVINO_ENGINES = ("openvino", "openvino-bf16")  # OpenVINO on the exported graph, fp32 or bf16
ENGINES = ("auto", "torch", *TORCH_ENGINES, "onnx", *OPENVINO_ENGINES)  # 'torch': PyTorch's default
