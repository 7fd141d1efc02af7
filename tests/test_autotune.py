"""The automatic engine choice: measured once per model and machine, refuses engines that drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imagefit.errors import ModelError, OptionError
from imagefit.features import FeatureExtractor, autotune
from imagefit.features.engines import ENGINES, build_engine, onnx_session
from imagefit.features.layers import Embedding
from imagefit.models import create_backbone
from tests.conftest import TINY_MODEL

pytestmark = pytest.mark.usefixtures("own_cache")


def _choose(backbone, tmp_path: Path):
    net = Embedding(backbone.model)
    sample = torch.randn(4, *backbone.data_config["input_size"])
    engine = autotune.choose_engine(net, backbone.data_config, sample, tmp_path / "m.onnx", "k")
    return engine, json.loads(autotune.choice_path("k").read_text())


def test_every_engine_agrees_with_eager_fp32(backbone, tmp_path: Path) -> None:
    net = Embedding(backbone.model)
    x = torch.randn(3, *backbone.data_config["input_size"])
    want = build_engine(net, backbone.data_config, "eager")(x)
    for name in ("channels_last", "onnx", "openvino", "bf16", "openvino-bf16"):
        got = build_engine(net, backbone.data_config, name, tmp_path / "m.onnx")(x)
        assert got.shape == want.shape and got.dtype == np.float32
        assert autotune.min_cosine(got, want) > (0.98 if "bf16" in name else 0.99999), name


def test_the_fastest_agreeing_engine_is_chosen_and_remembered(backbone, tmp_path: Path) -> None:
    engine, record = _choose(backbone, tmp_path)
    rates, cosines = record["images_per_s"], record["min_cosine"]
    assert set(rates) == set(autotune.CANDIDATES)
    agreeing = [n for n in rates if cosines[n] >= autotune.AGREEMENT]
    assert engine.name == record["engine"] == max(agreeing, key=rates.get)
    assert autotune.remembered("k") == engine.name
    assert autotune.remembered("other-model") is None


def test_an_engine_that_drifts_is_refused(backbone, tmp_path: Path, monkeypatch) -> None:
    real = autotune.build_engine

    def noisy_onnx(net, config, name, path=None):
        engine = real(net, config, name, path)
        if name != "onnx":
            return engine
        return lambda x: engine(x) + np.random.default_rng(0).normal(0, 1, (len(x), 1)).astype(np.float32)

    monkeypatch.setattr(autotune, "build_engine", noisy_onnx)
    fast_if_noisy = lambda e, x: (e(x), 0.001 if e.__class__.__name__ == "function" else 1.0)  # noqa: E731
    monkeypatch.setattr(autotune, "_time", fast_if_noisy)
    engine, record = _choose(backbone, tmp_path)
    assert record["min_cosine"]["onnx"] < autotune.AGREEMENT  # fastest, but wrong
    assert engine.name != "onnx" and record["engine"] != "onnx"


def test_extractor_measures_large_jobs_and_reuses_the_choice(backbone, tiny_data, monkeypatch) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))
    monkeypatch.setattr("imagefit.features.extract._EXPORT_WORTH", 10)
    calls = []
    real = autotune.choose_engine
    monkeypatch.setattr(
        "imagefit.features.extract.choose_engine", lambda *a: calls.append(len(a[2])) or real(*a)
    )
    first = FeatureExtractor(backbone.model, backbone.data_config, "auto", 8, 0, cache=False, progress=False)
    a = first(files)
    assert calls == [8]  # measured on the first batch
    second = FeatureExtractor(backbone.model, backbone.data_config, "auto", 8, 0, cache=False, progress=False)
    b = second(files)
    arch = autotune.architecture_key(first.net, backbone.data_config)
    assert calls == [8] and second.engine(len(files)).name == autotune.remembered(arch)
    assert autotune.min_cosine(a.vectors, b.vectors) > 0.999
    other_weights = create_backbone(TINY_MODEL, weights="none").model  # a fine-tuned copy, say
    third = FeatureExtractor(other_weights, backbone.data_config, "auto", 8, 0, cache=False, progress=False)
    third(files)
    assert calls == [8] and third.key != first.key  # same architecture: the choice is reused


def test_small_jobs_do_not_measure(backbone, tiny_data: Path) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))[:4]
    ex = FeatureExtractor(backbone.model, backbone.data_config, "auto", 4, 0, cache=False, progress=False)
    ex(files)
    assert ex.engine(4).name == "channels_last"
    assert autotune.remembered(autotune.architecture_key(ex.net, backbone.data_config)) is None


def test_forced_and_unknown_engines(backbone) -> None:
    named = {"eager", "channels_last", "bf16", "onnx", "openvino", "openvino-bf16", "torch", "auto"}
    named |= {"onnx-int8", "openvino-int8"}  # calibrated on a run's images: judged per run
    assert named == set(ENGINES)
    ex = FeatureExtractor(backbone.model, backbone.data_config, "bf16", 4, 0, cache=False, progress=False)
    assert ex.engine(1000).name == "bf16"
    with pytest.raises(OptionError, match="unknown engine"):
        build_engine(backbone.model, backbone.data_config, "tensorrt")


def test_a_corrupt_onnx_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07 not a protobuf graph")
    with pytest.raises(ModelError, match=r"cannot load .*bad\.onnx as an ONNX model") as info:
        onnx_session(bad)
    assert "\n" not in str(info.value)
