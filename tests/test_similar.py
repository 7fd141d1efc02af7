"""imagefit features and imagefit similar, end to end on generated folders with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from imagefit.cli import cli
from imagefit.features.engines import TorchEngine
from imagefit.features.store import load_embeddings
from tests.conftest import TINY_MODEL, write_image

FAST = ["--engine", "torch", "-j", "0"]


pytestmark = pytest.mark.usefixtures("own_cache")


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_file(timm.create_model(TINY_MODEL).state_dict(), str(path))
    return path


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    colours = [(220, 40, 30), (30, 60, 220), (40, 200, 60)]
    for i in range(12):
        write_image(folder / f"group{i % 3}" / f"img {i:02d}.jpg", colours[i % 3], seed=i)
    return folder


def run(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def embed(gallery: Path, weights: Path, out: Path, *extra) -> object:
    return run("features", TINY_MODEL, gallery, "-o", out, "--weights", weights, *FAST, *extra)


def test_features_writes_vectors_and_relative_paths(gallery, weights, tmp_path) -> None:
    result = embed(gallery, weights, tmp_path / "emb")
    assert result.exit_code == 0, result.output
    data = load_embeddings(tmp_path / "emb.safetensors")
    assert data.paths == sorted(p.relative_to(gallery).as_posix() for p in gallery.rglob("*.jpg"))
    assert data.vectors.shape == (12, timm.create_model(TINY_MODEL).num_features)
    assert data.model["layer"] == "pre-logits" and data.model["weights_file"] == str(weights.resolve())
    assert json.loads((tmp_path / "emb.json").read_text())["root"] == str(gallery.resolve())


def test_rerun_does_no_forward_pass_and_new_images_only_cost_themselves(
    gallery, weights, tmp_path, monkeypatch
) -> None:
    assert embed(gallery, weights, tmp_path / "a.safetensors").exit_code == 0
    seen = []
    original = TorchEngine.__call__
    monkeypatch.setattr(TorchEngine, "__call__", lambda self, x: seen.append(len(x)) or original(self, x))
    assert embed(gallery, weights, tmp_path / "b.safetensors").exit_code == 0
    assert seen == []
    write_image(gallery / "group0" / "new.jpg", (200, 50, 40), seed=99)
    assert embed(gallery, weights, tmp_path / "c.safetensors").exit_code == 0
    assert sum(seen) == 1
    a, c = load_embeddings(tmp_path / "a.safetensors"), load_embeddings(tmp_path / "c.safetensors")
    rows = [c.paths.index(p) for p in a.paths]
    np.testing.assert_allclose(c.vectors[rows], a.vectors, atol=1e-6)


def test_named_layer_with_max_pooling(gallery, weights, tmp_path) -> None:
    result = embed(gallery, weights, tmp_path / "l.safetensors", "--layer", "blocks.1", "--pool", "max")
    assert result.exit_code == 0, result.output
    data = load_embeddings(tmp_path / "l.safetensors")
    model = timm.create_model(TINY_MODEL)
    with torch.no_grad():
        out = model.blocks[:2](model.bn1(model.conv_stem(torch.zeros(1, 3, 160, 160))))
    assert data.vectors.shape == (12, out.shape[1])
    assert run("features", TINY_MODEL, gallery, "-o", tmp_path / "x", "--layer", "nope").exit_code == 2


def test_similar_json_excludes_the_query_and_sorts_by_distance(gallery, weights, tmp_path) -> None:
    embed(gallery, weights, tmp_path / "emb.safetensors")
    data = load_embeddings(tmp_path / "emb.safetensors")
    query = gallery / data.paths[4]
    result = run("similar", tmp_path / "emb.safetensors", query, "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.output)
    assert item["query"] == str(query)
    paths = [n["path"] for n in item["neighbours"]]
    assert str(query.resolve()) not in paths and len(paths) == 3
    distances = np.linalg.norm(data.vectors - data.vectors[4], axis=1)
    distances[4] = np.inf
    want = [str(data.absolute(i)) for i in np.argsort(distances)[:3]]
    assert paths == want
    np.testing.assert_allclose([n["distance"] for n in item["neighbours"]], np.sort(distances)[:3], rtol=1e-4)


def test_new_query_image_is_embedded_with_the_index_model(gallery, weights, tmp_path) -> None:
    embed(gallery, weights, tmp_path / "emb.safetensors")
    outside = write_image(tmp_path / "q" / "red.jpg", (220, 40, 30), seed=1000)
    result = run(
        "similar", tmp_path / "emb.safetensors", outside, "-k", "4", "--json", "-o", tmp_path / "g.png"
    )
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert len(item["neighbours"]) == 4
    assert (tmp_path / "g.png").stat().st_size > 1000


@pytest.mark.parametrize("case", ["k too large", "unreadable query", "other model", "not an index"])
def test_similar_bad_input_exits_2(gallery, weights, tmp_path, case) -> None:
    embed(gallery, weights, tmp_path / "emb.safetensors")
    index = tmp_path / "emb.safetensors"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    args = {
        "k too large": [index, gallery / "group0" / "img 00.jpg", "-k", "50"],
        "unreadable query": [index, broken],
        "other model": [index, write_image(tmp_path / "o.jpg", (1, 2, 3), 5), "--model", "resnet18"],
        "not an index": [gallery, gallery / "group0" / "img 00.jpg"],
    }[case]
    result = run("similar", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_connected_groups_join_chains_of_pairs_and_leave_singletons_out() -> None:
    from imagefit.features.neighbours import connected_groups

    paths = [Path(n) for n in "fedcba"]
    assert connected_groups([(0, 1), (2, 1), (4, 5)], paths) == [
        [Path("a"), Path("b")],
        [Path("d"), Path("e"), Path("f")],
    ]
    assert connected_groups([], paths) == []
