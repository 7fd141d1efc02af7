"""FCN-8s class-score layers on a timm classifier's stride-16 and stride-8 features (theme maps)."""

from __future__ import annotations

from torch import nn

from imagefit.errors import ModelError

SKIP_REDUCTIONS = (16, 8)  # feature strides whose class scores refine the backbone's (FCN-8s)


def add_dense_skips(model: nn.Module) -> nn.Module:
    """Give a timm classifier 1x1 class-score layers on its stride-16 and stride-8 features.

    Zero at first, so the dense map starts as the backbone's own (stride 32) and learns finer
    detail from the earlier features while training (the skip layers of FCN-8s). They live inside
    the model (`model.dense_skips`), so its safetensors file holds them; `imagefit.runs.load`
    adds them again when a run's model record says so.
    """
    info = {int(f["reduction"]): (i, int(f["num_chs"])) for i, f in enumerate(model.feature_info)}
    if not hasattr(model, "forward_intermediates") or any(r not in info for r in SKIP_REDUCTIONS):
        raise ModelError(f"{type(model).__name__} has no stride 8 and 16 features to map with")
    n = model.get_classifier().out_features
    skips = nn.ModuleDict({str(r): nn.Conv2d(info[r][1], n, 1) for r in SKIP_REDUCTIONS})
    for conv in skips.values():
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    model.dense_skips = skips
    model.dense_skip_indices = sorted(info[r][0] for r in SKIP_REDUCTIONS)
    return model
