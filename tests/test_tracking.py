"""--track mlflow and --track tensorboard: tiny runs trained by the CLI, read back with the real libraries."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.runs import read_history
from imagefit.train.callbacks.mlflow_tracker import store_of
from imagefit.train.callbacks.tracking import parse_track
from tests._tiles import TINY_MAP_TRAIN, make_tiles
from tests.conftest import TINY

pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install 'imagefit[mlflow]'")
SCRATCH = ["--strategy", "scratch", "--arch", "conv8@3-pool2-dense16", "--image-size", "24", "-j", "0"]
FILES = {"config.json", "metrics.json", "history.csv", "report.html", "curves.png"}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def mlflow_runs(store: Path) -> tuple[object, list]:
    """The client of the SQLite store in folder STORE, and the runs of its 'imagefit' experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imagefit")
    return client, client.search_runs([experiment.experiment_id])


def test_train_logs_params_every_epoch_metrics_and_files_to_mlflow(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "scratch-1"
    result = invoke(
        "train", tiny_data, "--out", run, *SCRATCH, "--epochs", "3", "--lr", "0.01", "--track", "mlflow"
    )
    assert result.exit_code == 0, result.output
    client, runs = mlflow_runs(tmp_path / "runs" / "mlruns")  # the default store: beside the run folder
    assert len(runs) == 1
    tracked = runs[0]
    assert tracked.info.run_name == "scratch-1" and tracked.info.status == "FINISHED"
    assert tracked.data.tags["imagefit.run_dir"] == str(run.resolve())
    params = tracked.data.params
    assert params["strategy"] == "scratch" and params["options.epochs"] == "3"
    assert float(params["options.lr"]) == 0.01 and params["options.image_size"] == "24"
    assert params["data.classes"] == "2" and params["data.train_images"] == "20"
    assert params["data.valid_images"] == "8" and params["classes"] == "blue, red"
    history = read_history(run / "history.csv")
    for key in ("loss", "acc", "val_loss", "val_acc", "lr"):
        logged = client.get_metric_history(tracked.info.run_id, key)
        assert [m.step for m in logged] == [1, 2, 3]
        assert [m.value for m in logged] == pytest.approx([row[key] for row in history], abs=1e-6)
    metrics = json.loads((run / "metrics.json").read_text())
    assert tracked.data.metrics["valid.accuracy"] == pytest.approx(metrics["valid"]["accuracy"])
    assert tracked.data.metrics["train.loss"] == pytest.approx(metrics["train"]["loss"])
    assert tracked.data.metrics["seconds.total"] == pytest.approx(metrics["seconds"]["total"])
    assert {a.path for a in client.list_artifacts(tracked.info.run_id)} == FILES
    copy = client.download_artifacts(tracked.info.run_id, "config.json", str(tmp_path / "back"))
    assert Path(copy).read_bytes() == (run / "config.json").read_bytes()


def test_a_resumed_run_continues_its_mlflow_run(tiny_data: Path, tmp_path: Path) -> None:
    store, run = tmp_path / "store", tmp_path / "run"
    track = ["--track", f"mlflow:{store}"]  # a folder: its SQLite database and artifacts
    assert invoke("train", tiny_data, "--out", run, *SCRATCH, "--epochs", "2", *track).exit_code == 0
    (run / "model.safetensors").unlink()  # as if killed before the end: only checkpoints remain
    result = invoke("train", "--resume", run, "-j", "0", *track)
    assert result.exit_code == 0, result.output
    client, runs = mlflow_runs(store)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "val_loss")] == [1, 2]


def test_the_environment_variable_tracks_a_linear_run(tiny_data: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGEFIT_TRACK", f"mlflow:{tmp_path / 'store'}")
    run = tmp_path / "linear"
    result = invoke("train", tiny_data, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    _, runs = mlflow_runs(tmp_path / "store")
    params, logged = runs[0].data.params, runs[0].data.metrics
    assert params["strategy"] == "linear" and params["backbone"] == "test_efficientnet"
    assert params["options.weights"] == "none"
    metrics = json.loads((run / "metrics.json").read_text())
    assert logged["valid.accuracy"] == pytest.approx(metrics["valid"]["accuracy"])
    assert "val_loss" not in logged  # a linear run has no epochs


def test_map_train_tracks_its_epochs_and_map_scores(tmp_path: Path) -> None:
    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "A2", "B1"), size=(70, 90))
    args = ["map-train", tiles, "--train", "A1,A2", "--valid", "B1", "--out", tmp_path / "maprun"]
    result = invoke("-q", *args, *TINY_MAP_TRAIN, "--track", "mlflow")
    assert result.exit_code == 0, result.output
    client, runs = mlflow_runs(tmp_path / "mlruns")
    tracked = runs[0]
    assert tracked.data.params["strategy"] == "map" and tracked.data.params["data.valid_tile"] == "B1"
    assert tracked.data.params["data.train_tiles"] == "A1,A2" and tracked.data.params["data.classes"] == "3"
    assert [m.step for m in client.get_metric_history(tracked.info.run_id, "val_acc")] == [1, 2]
    metrics = json.loads((tmp_path / "maprun" / "metrics.json").read_text())
    expected = metrics["valid_map"]["pixel_accuracy"]
    assert tracked.data.metrics["valid_map.pixel_accuracy"] == pytest.approx(expected)
    assert {"config.json", "metrics.json", "history.csv"} <= {
        a.path for a in client.list_artifacts(tracked.info.run_id)
    }


def test_train_writes_tensorboard_events(tiny_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, logdir = tmp_path / "run", tmp_path / "tb"
    result = invoke(
        "train", tiny_data, "--out", run, *SCRATCH, "--epochs", "3", "--track", f"tensorboard:{logdir}"
    )
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(logdir / "run"))
    events.Reload()
    history = read_history(run / "history.csv")
    for key in ("loss", "acc", "val_loss", "val_acc"):
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([row[key] for row in history], abs=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    assert events.Scalars("final/valid.accuracy")[0].value == pytest.approx(metrics["valid"]["accuracy"])
    params = events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| options.epochs | 3 |" in params and "| strategy | scratch |" in params
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"strategy": "scratch"' in config


def test_map_train_writes_tensorboard_events(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "A2", "B1"), size=(70, 90))
    args = ["map-train", tiles, "--train", "A1,A2", "--valid", "B1", "--out", tmp_path / "maprun"]
    assert invoke("-q", *args, *TINY_MAP_TRAIN, "--track", "tensorboard").exit_code == 0
    events = EventAccumulator(str(tmp_path / "tensorboard" / "maprun"))  # the default: beside the run
    events.Reload()
    assert [s.step for s in events.Scalars("val_loss")] == [1, 2]
    metrics = json.loads((tmp_path / "maprun" / "metrics.json").read_text())
    expected = metrics["valid_map"]["miou"]
    assert events.Scalars("final/valid_map.miou")[0].value == pytest.approx(expected)


def test_a_missing_extra_is_one_line_and_exit_2(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    result = invoke("train", tiny_data, "--out", tmp_path / "run", *TINY, "--track", "mlflow")
    assert result.exit_code == 2
    assert "pip install 'imagefit[mlflow]'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # checked before any work


def test_an_unknown_tracker_is_a_usage_mistake(tiny_data: Path, tmp_path: Path) -> None:
    result = invoke("train", tiny_data, "--out", tmp_path / "run", *TINY, "--track", "wandb")
    assert result.exit_code == 2 and "mlflow[:URI] or tensorboard[:DIR]" in result.output


def test_track_specs_and_stores_parse(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert parse_track("mlflow") == ("mlflow", None)
    assert parse_track("mlflow:http://127.0.0.1:5000") == ("mlflow", "http://127.0.0.1:5000")
    assert parse_track("tensorboard:logs/tb") == ("tensorboard", "logs/tb")
    run = tmp_path / "runs" / "r1"
    assert store_of("http://127.0.0.1:5000", run) == ("http://127.0.0.1:5000", None)  # the server decides
    db = tmp_path / "x" / "m.db"
    assert store_of(f"sqlite:///{db}", run) == (f"sqlite:///{db}", str(db.parent / "artifacts"))
    default = tmp_path / "runs" / "mlruns"
    assert store_of(None, run) == (f"sqlite:///{default / 'mlflow.db'}", str(default / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:8080")
    assert store_of(None, run) == ("http://tracking:8080", None)
