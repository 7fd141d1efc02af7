"""Rebuild a saved model's architecture from its record in a run's config (weights load after)."""

from __future__ import annotations

from torch import nn

from imagefit.errors import ModelError


def model_record(model: nn.Module, arch: str) -> dict:
    """What `build_model` needs to make `model`'s architecture again, as JSON."""
    from imagefit.models.small_cnn import SmallCNN

    if isinstance(model, SmallCNN):
        return {"kind": "small_cnn", "description": model.describe()}
    if hasattr(model, "segmentation_record"):  # a decoder of imagefit.models.segmentation
        return dict(model.segmentation_record)
    from imagefit.models.bands import PRETRAINED_CHANNELS, input_channels

    record = {"kind": "timm", "arch": arch, "dense_skips": hasattr(model, "dense_skips")}
    chans = input_channels(model)
    return record if chans == PRETRAINED_CHANNELS else {**record, "in_chans": chans}


def build_model(record: dict, num_classes: int) -> nn.Module:
    """An untrained model of the architecture `record` names, with `num_classes` outputs."""
    kind = record.get("kind")
    if kind == "small_cnn":
        from imagefit.models.small_cnn import SmallCNN

        return SmallCNN.from_description(record["description"], num_classes=num_classes)
    if kind == "timm":
        import timm

        chans = int(record.get("in_chans", 3))
        model = timm.create_model(record["arch"], pretrained=False, num_classes=num_classes, in_chans=chans)
        if record.get("dense_skips"):
            from imagefit.models.dense_skips import add_dense_skips

            add_dense_skips(model)
        return model
    if kind == "smp":
        from imagefit.models.segmentation import build_decoder

        return build_decoder(record, num_classes)
    raise ModelError(f"unknown model kind {kind!r} in the run's config: upgrade imagefit to load it")
