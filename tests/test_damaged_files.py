"""Damaged or foreign files where imagefit reads its own: refused with a message or recomputed, never run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import DataError, ModelError
from imagefit.features.cache import FeatureCache
from tests.conftest import TINY_MODEL, train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("damaged"))


def _copy_run(run: Path, to: Path) -> Path:
    to.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (to / f.name).write_bytes(f.read_bytes())
    return to


def _predict(run: Path) -> object:
    image = run.parent / "data" / "valid" / "red" / "red_00.jpg"
    return CliRunner().invoke(cli, ["predict", str(run), str(image), "--engine", "torch", "-j", "0"])


def test_run_from_a_newer_imagefit_is_refused(run: Path, tmp_path: Path) -> None:
    newer = _copy_run(run, tmp_path / "newer")
    config = json.loads((newer / "config.json").read_text())
    config.update(format_version=99, imagefit_version="9.0.0")
    (newer / "config.json").write_text(json.dumps(config))
    result = _predict(newer)
    assert result.exit_code == 2
    assert "newer imagefit (9.0.0" in result.output and "upgrade imagefit" in result.output


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda r: (r / "config.json").write_text('{"backbone": "x", '), "config.json is damaged"),
        (lambda r: (r / "config.json").write_text("[1, 2]"), "is not an imagefit run config"),
        (lambda r: (r / "config.json").write_text('{"format_version": 1}'), "lacks backbone"),
        (lambda r: _truncate(r / "model.safetensors"), "model.safetensors cannot be loaded"),
        (lambda r: (r / "model.safetensors").unlink(), "has no model.safetensors"),
    ],
)
def test_damaged_run_folder_is_a_clear_error(run: Path, tmp_path: Path, damage, expected: str) -> None:
    broken = _copy_run(run, tmp_path / "broken")
    damage(broken)
    result = _predict(broken)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_weights_of_another_model_are_refused(run: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = _copy_run(run, tmp_path / "other")
    save_file({"conv.weight": torch.zeros(3, 3)}, str(other / "model.safetensors"))
    result = _predict(other)
    assert result.exit_code == 2 and "belongs to another model" in result.output


def test_a_pickle_that_runs_code_is_never_run(tmp_path: Path) -> None:
    from imagefit.models.weights import read_state_dict

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    torch.save({"weight": torch.zeros(2), "payload": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="never unpickles code"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_damaged_checkpoint_cannot_be_resumed_but_says_so(tmp_path: Path) -> None:
    from imagefit.train.engine.state import load_state, save_state

    path = tmp_path / "last.safetensors"
    save_state(path, {"model": {"w": torch.ones(3)}, "position": {"epoch": 2}})
    assert load_state(path)["position"]["epoch"] == 2
    _truncate(path)
    with pytest.raises(ModelError, match="is damaged"):
        load_state(path)


def test_damaged_embedding_file_is_a_data_error(tmp_path: Path) -> None:
    from imagefit.features.store import EmbeddingSet, load_embeddings, save_embeddings

    data = EmbeddingSet(np.ones((2, 4), np.float32), ["a.jpg", "b.jpg"], str(tmp_path), {"source": "x"})
    path = save_embeddings(tmp_path / "emb", data)
    assert load_embeddings(path).vectors.shape == (2, 4)
    _truncate(path)
    with pytest.raises(DataError, match="is damaged"):
        load_embeddings(path)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_cache_shard_with_wrong_contents_is_dropped(tmp_path: Path, caplog) -> None:
    from tests._stream import old_shard

    cache = FeatureCache("k" * 32, tmp_path)
    digests = [f"{i:032x}" for i in range(3)]
    cache.dir.mkdir(parents=True)
    shard = cache.dir / "1-1.safetensors"  # as an older imagefit wrote them, before the store
    old_shard(shard, digests, np.arange(12, dtype=np.float32).reshape(3, 4))
    _flip_last_byte(shard)  # still parses as safetensors: only the checksum tells
    with caplog.at_level("WARNING"):
        assert FeatureCache("k" * 32, tmp_path).get(digests) == {}
    assert "do not match the checksum" in caplog.text
    assert not shard.exists()


def test_stale_temporaries_of_killed_writers_are_cleaned(tmp_path: Path) -> None:
    cache = FeatureCache("k" * 32, tmp_path)
    cache.dir.mkdir(parents=True)
    old, fresh = cache.dir / ".a.safetensors.x1.tmp", cache.dir / ".b.safetensors.x2.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    FeatureCache("k" * 32, tmp_path).get(["0" * 32])
    assert not old.exists() and fresh.exists()


def test_damaged_onnx_graph_in_the_cache_is_exported_again(tmp_path: Path, caplog) -> None:
    import timm

    from imagefit.features.engines import OnnxEngine

    net = timm.create_model(TINY_MODEL, pretrained=False, num_classes=0).eval()
    path = tmp_path / "graph.onnx"
    x = torch.randn(2, 3, 64, 64)
    expected = OnnxEngine(net, (3, 64, 64), path)(x)
    path.write_bytes(path.read_bytes()[:1000])
    with caplog.at_level("WARNING"):
        again = OnnxEngine(net, (3, 64, 64), path)(x)
    assert "exporting it again" in caplog.text
    np.testing.assert_allclose(again, expected, atol=1e-5)
