"""Feature extraction: engines agree, the cache is used, bad files are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from imagefit.data import iterate_batches
from imagefit.features import FeatureExtractor
from imagefit.features.engines import OnnxEngine, TorchEngine
from imagefit.features.layers import Embedding
from tests.conftest import TINY_MODEL

pytestmark = pytest.mark.usefixtures("own_cache")


def test_features_equal_a_plain_forward_pass(backbone, tiny_data: Path) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))[:6]
    extractor = FeatureExtractor(
        backbone.model, backbone.data_config, "torch", 4, 0, cache=False, progress=False
    )
    got = extractor(files)
    batch = next(iterate_batches(files, backbone.data_config, batch_size=6, workers=0))
    with torch.no_grad():
        want = backbone.model.forward_head(backbone.model.forward_features(batch.images), pre_logits=True)
    np.testing.assert_allclose(got.vectors, want.numpy(), atol=1e-5)
    assert got.ok.all() and got.computed == 6


def test_onnx_engine_matches_torch(backbone, tmp_path: Path) -> None:
    x = torch.randn(3, *backbone.data_config["input_size"])
    net = Embedding(backbone.model)
    onnx = OnnxEngine(net, backbone.data_config["input_size"], tmp_path / "m.onnx")
    reference = TorchEngine(net, torch.device("cpu"))
    np.testing.assert_allclose(onnx(x), reference(x), atol=1e-4)
    assert (tmp_path / "m.onnx").is_file()


def test_cached_files_are_not_recomputed(backbone, tiny_data: Path, monkeypatch) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))
    first = FeatureExtractor(backbone.model, backbone.data_config, "torch", 8, 0, progress=False)(files[:10])
    calls = []
    original = TorchEngine.__call__
    monkeypatch.setattr(TorchEngine, "__call__", lambda self, x: calls.append(len(x)) or original(self, x))
    again = FeatureExtractor(backbone.model, backbone.data_config, "torch", 8, 0, progress=False)(files)
    assert again.reused == 10 and again.computed == len(files) - 10
    assert sum(calls) == len(files) - 10
    np.testing.assert_allclose(again.vectors[:10], first.vectors, atol=1e-6)


def test_changed_weights_do_not_reuse_the_cache(backbone, tiny_data: Path) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))[:4]
    FeatureExtractor(backbone.model, backbone.data_config, "torch", 4, 0, progress=False)(files)
    other = timm.create_model(TINY_MODEL)
    out = FeatureExtractor(other, backbone.data_config, "torch", 4, 0, progress=False)(files)
    assert out.reused == 0 and out.computed == 4


def test_bad_files_are_reported_in_order(backbone, tiny_data: Path) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))[:5]
    broken = tiny_data / "broken.jpg"
    broken.write_bytes(b"GIF89a nonsense")
    missing = tiny_data / "missing.jpg"
    ex = FeatureExtractor(backbone.model, backbone.data_config, "torch", 2, 0, progress=False)
    out = ex([files[0], broken, files[1], missing, *files[2:]])
    assert out.ok.tolist() == [True, False, True, False, True, True, True]
    assert [p.name for p, _ in out.errors] == ["broken.jpg", "missing.jpg"]
    assert all(str(p) in reason for p, reason in out.errors)
    assert out.vectors.shape == (5, backbone.num_features)
