"""The feature cache: content digests, model keys, and shards that survive restarts and corruption."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from imagefit.data.digests import file_digest
from imagefit.features.cache import FeatureCache, cache_root, model_key

_DATA_CONFIG = {
    "input_size": (3, 160, 160),
    "interpolation": "bicubic",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "crop_pct": 0.95,
    "crop_mode": "center",
}


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", pretrained=False).eval()


def _digests(tmp_path: Path, n: int, tag: str = "") -> list[str]:
    out = []
    for i in range(n):
        path = tmp_path / "files" / f"{tag}{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{tag} file number {i}".encode())
        out.append(file_digest(path))
    return out


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


# --- file digests -----------------------------------------------------------------------------


def test_file_digest_follows_content_not_name(tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    b = tmp_path / "other name.png"
    a.write_bytes(b"\xff\xd8 same bytes")
    b.write_bytes(b"\xff\xd8 same bytes")
    assert file_digest(a) == file_digest(b)
    assert len(file_digest(a)) == 32 and int(file_digest(a), 16) >= 0
    b.write_bytes(b"\xff\xd8 same bytes!")
    assert file_digest(a) != file_digest(b)


def test_file_digest_of_large_file_reads_every_chunk(tmp_path: Path) -> None:
    data = bytearray(3 * (1 << 20) + 5)
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(data))
    before = file_digest(path)
    data[-1] = 1  # a change past the first chunk
    path.write_bytes(bytes(data))
    assert file_digest(path) != before


# --- FeatureCache -----------------------------------------------------------------------------


def test_put_then_get_round_trip(tmp_path: Path) -> None:
    digests = _digests(tmp_path, 5)
    vectors = _vectors(5)
    cache = FeatureCache("k1", root=tmp_path)
    assert cache.get(digests) == {}
    cache.put(digests[:3], vectors[:3])
    got = cache.get(digests)
    assert sorted(got) == [0, 1, 2]
    for i in range(3):
        np.testing.assert_array_equal(got[i], vectors[i])


def test_get_reports_positions_of_the_query(tmp_path: Path) -> None:
    digests = _digests(tmp_path, 4)
    vectors = _vectors(4)
    cache = FeatureCache("k1", root=tmp_path)
    cache.put([digests[1], digests[3]], vectors[[1, 3]])
    got = cache.get([digests[3], digests[0], digests[1]])
    assert sorted(got) == [0, 2]
    np.testing.assert_array_equal(got[0], vectors[3])
    np.testing.assert_array_equal(got[2], vectors[1])


def test_a_second_cache_object_sees_stored_vectors(tmp_path: Path) -> None:
    digests = _digests(tmp_path, 6)
    vectors = _vectors(6, dim=16)
    first = FeatureCache("model-a", root=tmp_path)
    first.put(digests[:4], vectors[:4])
    first.put(digests[4:], vectors[4:])
    second = FeatureCache("model-a", root=tmp_path)
    got = second.get(digests)
    assert sorted(got) == list(range(6))
    np.testing.assert_array_equal(np.stack([got[i] for i in range(6)]), vectors)
    assert len(second.store) == 6 and not list(second.dir.glob("*.safetensors"))


def test_keys_are_kept_apart(tmp_path: Path) -> None:
    digests = _digests(tmp_path, 2)
    FeatureCache("model-a", root=tmp_path).put(digests, _vectors(2))
    assert FeatureCache("model-b", root=tmp_path).get(digests) == {}


def test_put_of_nothing_writes_nothing(tmp_path: Path) -> None:
    cache = FeatureCache("k", root=tmp_path)
    cache.put([], np.zeros((0, 4), np.float32))
    assert not cache.dir.exists() or not any(cache.dir.iterdir())


def test_corrupt_shard_is_skipped_and_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    digests = _digests(tmp_path, 4)
    vectors = _vectors(4)
    FeatureCache("k", root=tmp_path).put(digests[:2], vectors[:2])
    bad = FeatureCache("k", root=tmp_path).dir / "0-bad.safetensors"
    bad.write_bytes(b"\x07garbage, not a safetensors file" * 10)
    with caplog.at_level(logging.WARNING):
        got = FeatureCache("k", root=tmp_path).get(digests)
    assert sorted(got) == [0, 1]  # the good shard still counts
    np.testing.assert_array_equal(got[1], vectors[1])
    assert not bad.exists()
    assert str(bad) in caplog.text


def test_only_corrupt_shards_give_an_empty_cache(tmp_path: Path) -> None:
    digests = _digests(tmp_path, 2)
    cache = FeatureCache("k", root=tmp_path)
    cache.dir.mkdir(parents=True)
    bad = cache.dir / "a.safetensors"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    assert cache.get(digests) == {}
    assert not bad.exists()
    cache.put(digests, _vectors(2))  # and it goes on working
    assert sorted(FeatureCache("k", root=tmp_path).get(digests)) == [0, 1]


def test_cache_root_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here"
    digests = _digests(tmp_path, 1)
    FeatureCache("k").put(digests, _vectors(1))
    assert (tmp_path / "here" / "features" / "k" / "vectors.sqlite").is_file()
    monkeypatch.delenv("IMAGEFIT_CACHE")
    assert cache_root() == Path.home() / ".cache" / "imagefit"


# --- model keys -------------------------------------------------------------------------------


def test_model_key_is_stable(tiny_model: torch.nn.Module) -> None:
    key = model_key(tiny_model, _DATA_CONFIG)
    assert key == model_key(copy.deepcopy(tiny_model), dict(_DATA_CONFIG))
    assert len(key) == 32


def test_model_key_changes_with_a_backbone_weight(tiny_model: torch.nn.Module) -> None:
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other.conv_stem.weight[0, 0, 0, 0] += 1e-3
    assert model_key(other, _DATA_CONFIG) != model_key(tiny_model, _DATA_CONFIG)


def test_model_key_changes_with_a_buffer(tiny_model: torch.nn.Module) -> None:
    other = copy.deepcopy(tiny_model)
    other.bn2.running_mean[0] += 0.5
    assert model_key(other, _DATA_CONFIG) != model_key(tiny_model, _DATA_CONFIG)


@pytest.mark.parametrize(
    "change",
    [
        {"input_size": (3, 192, 192)},
        {"mean": (0.5, 0.5, 0.5)},
        {"crop_pct": 1.0},
        {"interpolation": "bilinear"},
    ],
)
def test_model_key_changes_with_data_config(tiny_model: torch.nn.Module, change: dict) -> None:
    assert model_key(tiny_model, {**_DATA_CONFIG, **change}) != model_key(tiny_model, _DATA_CONFIG)


def test_model_key_changes_with_layer(tiny_model: torch.nn.Module) -> None:
    assert model_key(tiny_model, _DATA_CONFIG, layer="logits") != model_key(tiny_model, _DATA_CONFIG)


def test_model_key_ignores_the_classifier_head(tiny_model: torch.nn.Module) -> None:
    key = model_key(tiny_model, _DATA_CONFIG)
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other.get_classifier().weight.normal_()
        other.get_classifier().bias.fill_(3.0)
    assert model_key(other, _DATA_CONFIG) == key
    other.reset_classifier(5)  # a new head of another size: same features
    assert model_key(other, _DATA_CONFIG) == key
