"""The persisted similarity index, imagefit index, and features into one store from two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagefit.features import index as index_module
from imagefit.features.cache import FeatureCache
from imagefit.features.index import SimilarityIndex
from imagefit.features.neighbours import NeighbourIndex
from imagefit.features.store import load_embeddings
from tests.conftest import TINY_MODEL, write_image
from tests.test_similar import FAST, embed, gallery, run, weights  # noqa: F401 - fixtures

MODEL = {"source": "test", "layer": "pre-logits", "pool": "avg", "key": "k"}


pytestmark = pytest.mark.usefixtures("own_cache")


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 20), dim)) * 4
    return (centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _made(tmp_path: Path, vectors: np.ndarray, metric: str = "euclidean") -> SimilarityIndex:
    made = SimilarityIndex.create(tmp_path / "idx", MODEL, str(tmp_path), metric)
    names = [f"{i}.jpg" for i in range(len(vectors))]
    made.add(names, [f"{i:032x}" for i in range(len(vectors))], vectors)
    return made


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_loaded_exact_index_gives_exact_neighbours(tmp_path: Path, metric: str) -> None:
    vectors = clustered(300)
    _made(tmp_path, vectors, metric)
    loaded = SimilarityIndex.open(tmp_path / "idx")
    assert loaded.meta["kind"] == "exact" and len(loaded) == 300
    d, i = loaded.search(vectors[:20], 5)
    want_d, want_i = NeighbourIndex(vectors, metric, method="exact").search(vectors[:20], 5)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_allclose(d, want_d, rtol=1e-4, atol=0.02)  # numpy loses ~0.01 at 0 (|a|²+|b|²-2ab)


def test_ivfpq_index_finds_the_exact_neighbours_and_grows_without_retraining(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(index_module, "EXACT_BELOW", 500)
    vectors = clustered(1200, dim=16)
    made = _made(tmp_path, vectors[:1000])
    assert made.meta["kind"] == "ivfpq"
    loaded = SimilarityIndex.open(tmp_path / "idx")
    centroids = loaded.faiss.quantizer.reconstruct_n(0, loaded.faiss.nlist)
    loaded.add(
        [f"{i}.jpg" for i in range(1000, 1200)], [f"{i:032x}" for i in range(1000, 1200)], vectors[1000:]
    )
    again = SimilarityIndex.open(tmp_path / "idx")
    np.testing.assert_array_equal(again.faiss.quantizer.reconstruct_n(0, again.faiss.nlist), centroids)
    assert again.faiss.ntotal == 1200 and again.row_of(f"{1199:032x}") == 1199
    _, got = again.search(vectors[::12], 10)
    _, want = NeighbourIndex(vectors, method="exact").search(vectors[::12], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert recall >= 0.95


def test_rows_stored_but_not_indexed_are_added_on_open(tmp_path: Path) -> None:
    vectors = clustered(100)
    made = _made(tmp_path, vectors[:80])
    made.append([f"{i}.jpg" for i in range(80, 100)], [f"{i:032x}" for i in range(80, 100)], vectors[80:])
    loaded = SimilarityIndex.open(tmp_path / "idx")  # as after a kill before sync()
    assert loaded.faiss.ntotal == 100
    assert loaded.search(vectors[95:96], 1)[1][0, 0] == 95


def test_index_of_a_folder_answers_like_the_embedding_file_and_grows(gallery, weights, tmp_path) -> None:  # noqa: F811
    assert embed(gallery, weights, tmp_path / "emb").exit_code == 0
    built = run("index", gallery, "-o", tmp_path / "idx", "-m", TINY_MODEL, "--weights", weights, *FAST)
    assert built.exit_code == 0, built.output
    assert "12 images" in built.output
    query = gallery / "group1" / "img 04.jpg"
    from_index = json.loads(run("similar", tmp_path / "idx", query, "-k", "4", "--json").output)
    from_file = json.loads(run("similar", tmp_path / "emb", query, "-k", "4", "--json").output)
    assert [n["path"] for n in from_index[0]["neighbours"]] == [n["path"] for n in from_file[0]["neighbours"]]
    assert str(query.resolve()) not in [n["path"] for n in from_index[0]["neighbours"]]
    write_image(gallery / "group1" / "new.jpg", (30, 60, 220), seed=77)
    grown = run("index", gallery, "-o", tmp_path / "idx", *FAST)  # the index's own model, no options
    assert grown.exit_code == 0, grown.output
    assert "13 images" in grown.output
    other = run("index", gallery, "-o", tmp_path / "idx", "-m", TINY_MODEL, *FAST)  # untrained weights
    assert other.exit_code == 2 and "write another index" in other.output


def test_index_of_an_embedding_file_and_every_name_of_the_pair(gallery, weights, tmp_path) -> None:  # noqa: F811
    assert embed(gallery, weights, tmp_path / "index.parquet").exit_code == 0
    assert (tmp_path / "index.parquet.safetensors").is_file() and (tmp_path / "index.parquet.json").is_file()
    query = gallery / "group0" / "img 03.jpg"
    answers = []
    for name in ("index.parquet", "index.parquet.json", "index.parquet.safetensors"):
        result = run("similar", tmp_path / name, query, "-k", "3", "--json")
        assert result.exit_code == 0, result.output
        answers.append(json.loads(result.output))
    assert answers[0] == answers[1] == answers[2]
    built = run("index", tmp_path / "index.parquet.json", "-o", tmp_path / "idx")
    assert built.exit_code == 0, built.output
    assert json.loads(run("similar", tmp_path / "idx", query, "-k", "3", "--json").output) == answers[0]


def _features(cache: Path, folder: Path, out: Path, weights: Path) -> subprocess.Popen:  # noqa: F811
    env = {**os.environ, "IMAGEFIT_CACHE": str(cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["features", TINY_MODEL, folder, "-o", out, "--weights", weights, *FAST, "-b", "2"]
    command = [sys.executable, "-m", "imagefit", *map(str, args)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _store(cache: Path) -> dict[str, np.ndarray]:
    [folder] = (cache / "features").iterdir()
    store = FeatureCache(folder.name, root=cache).store
    return {d: v for ds, vs in store.batches() for d, v in zip(ds, vs, strict=True)}


def test_two_feature_runs_on_overlapping_folders_share_one_store(weights, tmp_path, monkeypatch) -> None:  # noqa: F811
    everything = tmp_path / "all"
    for i in range(10):
        image = write_image(everything / f"{i}.jpg", (20 * i, 100, 200 - 15 * i), seed=i)
        for folder in ["a"] * (i < 6) + ["b"] * (i >= 4):  # a: 0-5, b: 4-9
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / image.name).write_bytes(image.read_bytes())
    together = [_features(tmp_path / "shared", tmp_path / p, tmp_path / f"{p}.emb", weights) for p in "ab"]
    for proc in together:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    monkeypatch.setenv("IMAGEFIT_CACHE", str(tmp_path / "alone"))
    assert embed(everything, weights, tmp_path / "all.emb", "-b", "2").exit_code == 0
    shared, single = _store(tmp_path / "shared"), _store(tmp_path / "alone")
    assert len(shared) == 10 and sorted(shared) == sorted(single)
    for digest, vector in single.items():
        np.testing.assert_allclose(shared[digest], vector, rtol=1e-5, atol=1e-6)
    a = load_embeddings(tmp_path / "a.emb")
    assert a.paths == [f"{i}.jpg" for i in range(6)]
