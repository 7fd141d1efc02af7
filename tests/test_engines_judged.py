"""Engines judged by the predictions they give: a disagreeing engine is never chosen, a forced engine
that cannot run is a clear error, and vectors of two precisions never share a cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import DataError, OptionError
from imagefit.features import FeatureExtractor, machine
from imagefit.features.cache import FeatureCache
from imagefit.features.vectorstore import PrecisionMismatch, VectorStore
from imagefit.inference import judge
from imagefit.runs import load
from imagefit.runs.engines import choose, engine_request, judge_run, read_engines
from imagefit.runs.folder import ENGINES_FILE, JUDGE_IMAGES
from tests.conftest import TINY_MODEL, make_folder

pytestmark = pytest.mark.usefixtures("own_cache")
AUTO = ["--model", TINY_MODEL, "--weights", "none", "-j", "0"]  # the run's engines left to judge


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A linear run of the tiny backbone trained with --engine auto on two colours (6 + 6 valid)."""
    place = tmp_path_factory.mktemp("judged")
    make_folder(place / "data", n_train=6, n_valid=6)
    result = CliRunner().invoke(cli, ["train", str(place / "data"), "--out", str(place / "run"), *AUTO])
    assert result.exit_code == 0, result.output
    return place / "run"


class Swapped:
    """An engine whose rows come back reversed: fast, its vectors plausible, its predictions wrong."""

    def __init__(self, engine):
        self.engine, self.name, self.precision = engine, engine.name, engine.precision

    def __call__(self, x):
        return self.engine(x)[::-1].copy()


def test_an_engine_that_disagrees_on_purpose_is_not_chosen(run: Path, monkeypatch) -> None:
    from imagefit.features import extract

    real = extract.make_engine
    bad = "openvino-int8"

    def engines(net, cfg, kind, *args):
        engine = real(net, cfg, kind, *args)
        return Swapped(engine) if kind == bad else engine

    monkeypatch.setattr(extract, "make_engine", engines)
    speed = {bad: 1000.0, "openvino": 100.0}  # the swapped engine is by far the fastest
    monkeypatch.setattr(judge, "_rate", lambda engine, sample: speed.get(engine.name, 10.0))
    images = json.loads((run / JUDGE_IMAGES).read_text())
    assert len(images["valid"]) == 12 and images["calibration"]  # written by training
    assert not (run / ENGINES_FILE).exists()  # 12 validation images: too few to judge when training
    assert judge_run(run, load(run)) is None and not (run / ENGINES_FILE).exists()  # nor later
    assert load(run).engine_for("auto", 10_000) == "auto"  # a large job on it keeps fp32, unjudged
    assert not (run / ENGINES_FILE).exists()
    record = judge_run(run, load(run), minimum=12)  # judged on purpose, however few
    verdicts = record["engines"]
    assert verdicts[bad]["agreement"] < judge.AGREEMENT and not verdicts[bad]["eligible"]
    assert "agrees with fp32 on" in verdicts[bad]["reason"]
    assert record["choice"] != bad and verdicts[record["choice"]]["eligible"]
    eligible = {n: v["images_per_s"] for n, v in verdicts.items() if v["eligible"]}
    assert record["choice"] == max(eligible, key=eligible.get)
    assert read_engines(run) == json.loads((run / ENGINES_FILE).read_text())  # kept in the run folder
    # predict --engine auto follows the record; no-NAME forbids the choice and takes the next fastest
    assert load(run).engine_for("auto", 1) == record["choice"]
    runner_up = max((n for n in eligible if n != record["choice"]), key=eligible.get)
    assert choose(record, (record["choice"],)) == runner_up
    assert load(run).engine_for(f"no-{record['choice']}", 1) == runner_up


def test_the_agreement_threshold_decides() -> None:
    """On hand-made predictions of 200 images: 199 equal to fp32's (99.5 %) pass, 198 fail; a score
    0.2 points below fp32's fails however many agree."""

    class Head:
        multilabel = False

        def probabilities(self, v):
            return v

    fp32 = np.eye(2)[np.arange(200) % 2]
    truth = np.arange(200) % 2
    truth[0] = 1  # fp32 is wrong on image 0, right on the others: 99.5 % accuracy
    reference = judge.score(Head(), fp32.argmax(1), truth)
    for flipped, eligible in ((1, True), (2, False)):  # image 0 (now right), then image 1 (now wrong)
        vectors = fp32.copy()
        vectors[:flipped] = vectors[:flipped, ::-1]
        verdict = judge.Verdict("x", "int8")
        judge._judge(verdict, Head(), vectors, fp32.argmax(1), truth, reference)
        assert verdict.score >= reference - 0.0 and verdict.eligible is eligible, (flipped, verdict)
    verdict = judge.Verdict("x", "int8")
    judge._judge(verdict, Head(), fp32, fp32.argmax(1), truth, reference + judge.MAX_DROP)
    assert verdict.agreement == 1.0 and not verdict.eligible and "loses" in verdict.reason


def test_forcing_an_engine_this_cpu_lacks_is_a_clear_error(run: Path, monkeypatch) -> None:
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2"}))  # no bf16 in hardware
    image = str(next((run.parent / "data" / "valid").rglob("*.jpg")))
    for engine in ("openvino-bf16", "bf16"):
        result = CliRunner().invoke(cli, ["predict", str(run), image, "--engine", engine])
        assert result.exit_code == 2, result.output
        assert "computing bf16 natively" in result.output and "Traceback" not in result.output
    with pytest.raises(OptionError, match="bf16 natively"):
        engine_request("openvino-bf16")
    assert "openvino-bf16" not in judge.candidates()  # nor judged, nor chosen


def test_unknown_engines_and_int8_without_calibration_are_clear_errors(run: Path, monkeypatch) -> None:
    image = str(next((run.parent / "data" / "valid").rglob("*.jpg")))
    result = CliRunner().invoke(cli, ["predict", str(run), image, "--engine", "tensorrt"])
    assert result.exit_code == 2 and "no-NAME" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["predict", str(run), image, "--engine", "no-auto"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    monkeypatch.setenv("IMAGEFIT_CACHE", str(run.parent / "empty-cache"))  # no int8 graph cached
    gone = run.parent / "gone"
    gone.mkdir(exist_ok=True)
    (gone / "config.json").write_text((run / "config.json").read_text())
    (gone / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    result = CliRunner().invoke(cli, ["predict", str(gone), image, "--engine", "onnx-int8"])
    assert result.exit_code == 2, result.output
    assert "calibrated on a run's training images" in result.output and "Traceback" not in result.output


def test_vectors_of_two_precisions_are_never_mixed(tiny_data: Path, backbone) -> None:
    files = sorted(tiny_data.rglob("*.jpg"))[:6]
    options = {"batch_size": 4, "workers": 0, "progress": False}
    fp32 = FeatureExtractor(backbone.model, backbone.data_config, "channels_last", **options)
    bf16 = FeatureExtractor(backbone.model, backbone.data_config, "bf16", **options)
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert fp32.cache.dir != bf16.cache.dir  # another precision, another cache key
    a, b = fp32(files), bf16(files)
    assert a.computed == 6 and b.computed == 6 and b.reused == 0  # bf16 did not take fp32's vectors
    again = FeatureExtractor(backbone.model, backbone.data_config, "openvino", **options)(files)
    assert again.reused == 6  # fp32 engines share one cache
    np.testing.assert_array_equal(again.vectors, a.vectors)
    assert not np.array_equal(a.vectors, b.vectors)
    # the store itself refuses another precision, to read and to write
    with pytest.raises(DataError, match="holds fp32 feature vectors, not bf16"):
        FeatureCache(fp32.cache.dir.name, precision="bf16").get(a.digests)
    with pytest.raises(DataError, match="never mixed"):
        FeatureCache(fp32.cache.dir.name, precision="bf16").put(a.digests[:1], b.vectors[:1])


def test_a_store_records_its_precision_with_its_first_vectors(tmp_path: Path) -> None:
    path, vectors = tmp_path / "v.sqlite", np.ones((2, 3), np.float32)
    VectorStore(path, "int8-abc").put(["00" * 16, "11" * 16], vectors)
    assert len(VectorStore(path, "int8-abc").get(["00" * 16])) == 1
    for other in ("fp32", "int8-def"):  # another calibration is another precision
        with pytest.raises(PrecisionMismatch):
            VectorStore(path, other).get(["00" * 16])
    old = tmp_path / "old.sqlite"
    VectorStore(old).put(["22" * 16], vectors[:1])  # written without a precision: fp32
    assert len(VectorStore(old, "fp32").get(["22" * 16])) == 1
    with pytest.raises(PrecisionMismatch):
        VectorStore(old, "bf16").put(["33" * 16], vectors[:1])


def _record(choice: str, agreement: float) -> dict:
    from imagefit.features.autotune import machine_fingerprint

    verdict = {"precision": "bf16", "images_per_s": 90.0, "agreement": agreement, "score": 1.0}
    fp32 = {"precision": "fp32", "images_per_s": 50.0, "agreement": None, "score": None}
    engines = {choice: {**verdict, "eligible": True}, "openvino": {**fp32, "eligible": True}}
    return {"choice": choice, "machine": machine_fingerprint(), "engines": engines, "fp32_score": 1.0}


def test_predict_and_serve_use_the_judged_engine_unless_forbidden(run: Path, tmp_path: Path) -> None:
    from imagefit.serve.model import ServedModel

    judged = tmp_path / "run"
    judged.mkdir()
    for name in ("config.json", "model.safetensors", JUDGE_IMAGES):
        (judged / name).write_bytes((run / name).read_bytes())
    (judged / ENGINES_FILE).write_text(json.dumps(_record("openvino-bf16", 0.9975)))
    served = ServedModel.from_run(judged, max_batch=2)
    assert served.engine_name == "openvino-bf16"
    described = served.describe()
    assert described["engine"] == "openvino-bf16" and described["engine_agreement"] == 0.9975
    assert ServedModel.from_run(judged, "no-openvino-bf16", max_batch=2).engine_name == "openvino"
    images = sorted((run.parent / "data" / "valid").rglob("*.jpg"))
    csv, features = tmp_path / "p.csv", tmp_path / "cache" / "features"  # own_cache's
    for engine, precision in (("auto", "bf16"), ("no-openvino-bf16", "fp32")):
        args = ["predict", str(judged), *map(str, images), "--engine", engine, "--csv", str(csv)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert len(csv.read_text().splitlines()) == len(images) + 1
        made = {d.name.endswith("-bf16") for d in features.iterdir()}
        assert (True in made) if precision == "bf16" else made == {True, False}, (engine, made)
