"""The scratch strategy end to end on tiny generated folders: run folder, channels, resume, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from imagefit.errors import ModelError, OptionError
from imagefit.models.small_cnn import SmallCNN
from imagefit.runs import load, read_config, read_history
from imagefit.train import resume, train
from tests._training import InterruptAt, without_seconds
from tests.conftest import make_folder

SPEC = "conv4@3-pool2-dense8"


def train_scratch(data, **kwargs):
    """The scratch strategy through the public entry point."""
    return train(data, "scratch", **kwargs)


FAST = {"arch": SPEC, "batch_size": 8, "image_size": 16, "progress": False, "workers": 0, "lr": 0.01}


def test_a_scratch_run_folder_holds_everything_to_reuse_the_model(tmp_path):
    data = make_folder(tmp_path / "data")
    result = train_scratch(data, out=tmp_path / "run", epochs=3, **FAST)
    run = result.run_dir
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "history.csv", "checkpoints"} <= names
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.safetensors", "last.safetensors"]
    config = read_config(run)
    assert (config.strategy, config.arch, config.backbone, config.weights) == (
        "scratch",
        SPEC,
        "small_cnn",
        "none",
    )
    assert config.classes == ["blue", "red"] and config.data_config["input_size"] == (3, 16, 16)
    assert config.options["channels"] == 3 and config.options["optimizer"] == "adam"
    assert config.options["small_cnn"] == {"spec": SPEC, "in_chans": 3, "input_size": [16, 16]}
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1, 2, 3]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["valid"]["n"] == 8 and metrics["train"]["n"] == 20 and metrics["epochs"] == 3
    assert metrics["valid"]["accuracy"] == 1.0  # blue against red
    best = min(read_history(run / "history.csv"), key=lambda r: r["val_loss"])
    assert metrics["best"]["epoch"] == best["epoch"]
    assert metrics["valid"]["loss"] == pytest.approx(best["val_loss"], rel=1e-4)  # the best epoch was kept

    model = SmallCNN.from_description(config.options["small_cnn"], num_classes=2)
    state = load_file(str(run / "model.safetensors"))
    model.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.eval()(x), result.classifier.model(x))


def test_the_classifier_predicts_files_through_the_usual_pipeline(tmp_path):
    data = make_folder(tmp_path / "data")
    result = train_scratch(data, out=tmp_path / "run", epochs=3, **FAST)
    preds = result.classifier.predict(
        [data / "valid"], engine="torch", cache=False, progress=False, workers=0
    )
    truth = [p.parent.name for p in preds.paths]
    assert len(truth) == 8 and preds.labels == truth


def test_grayscale_images_give_a_one_channel_model_at_their_own_size(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("valid", 3)):
        for name, level in (("dark", 60), ("light", 200)):
            for i in range(n):
                pixels = np.clip(level + rng.normal(0, 20, (20, 24)), 0, 255).astype(np.uint8)
                folder = tmp_path / "gray" / split / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels, "L").save(folder / f"{i}.png")
    options = {**FAST, "image_size": None}
    result = train_scratch(tmp_path / "gray", out=tmp_path / "run", epochs=2, **options)
    config = read_config(result.run_dir)
    assert config.options["channels"] == 1 and config.options["image_size"] == 20
    assert config.data_config["input_size"] == (1, 20, 20) and config.data_config["mean"] == (0.5,)
    assert result.classifier.model.features[0].in_channels == 1
    assert result.metrics["valid"]["n"] == 6


def test_colour_images_can_be_trained_in_grayscale_with_workers(tmp_path):
    data = make_folder(tmp_path / "data", n_train=4, n_valid=2)
    options = {**FAST, "workers": 1}
    result = train_scratch(data, out=tmp_path / "run", epochs=1, channels=1, **options)
    assert result.classifier.model.features[0].in_channels == 1
    assert result.metrics["train"]["n"] == 8


@pytest.mark.parametrize("mixing", [{}, {"mixup": 0.4, "label_smoothing": 0.1}])
def test_interrupted_then_resumed_equals_an_uninterrupted_run(tmp_path, mixing):
    data = make_folder(tmp_path / "data", n_train=6, n_valid=2)
    straight = train_scratch(data, out=tmp_path / "straight", epochs=3, seed=3, **FAST, **mixing)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_scratch(data, out=run, epochs=3, seed=3, callbacks=[InterruptAt(2, 0)], **FAST, **mixing)
    assert not (run / "model.safetensors").exists() and (run / "checkpoints" / "last.safetensors").is_file()
    with pytest.raises(ModelError, match="did not finish"):
        load(run)
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1]
    resumed = resume(run, progress=False, workers=0)
    a, b = load_file(str(straight.run_dir / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert without_seconds(read_history(run / "history.csv")) == without_seconds(
        read_history(straight.run_dir / "history.csv")
    )
    assert resumed.metrics["valid"] == straight.metrics["valid"]


def test_an_existing_run_is_not_overwritten_and_only_scratch_runs_resume(tmp_path):
    data = make_folder(tmp_path / "data", n_train=4, n_valid=1)
    train_scratch(data, out=tmp_path / "run", epochs=1, **FAST)
    with pytest.raises(OptionError, match="already holds a training run"):
        train_scratch(data, out=tmp_path / "run", epochs=1, **FAST)
    (tmp_path / "new").mkdir()
    shutil.copy(tmp_path / "run" / "config.json", tmp_path / "new" / "config.json")
    with pytest.raises(ModelError, match="nothing to resume"):
        resume(tmp_path / "new", progress=False, workers=0)


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"optimizer": "adagrad"}, OptionError, "unknown optimizer 'adagrad'"),
        ({"lr": 0.0}, OptionError, "--lr must be a positive number"),
        ({"lr": -1e-3}, OptionError, "--lr must be a positive number"),
        ({"arch": "conv30@5-maxout"}, ModelError, "cannot read 'maxout'"),
        ({"schedule": "step"}, OptionError, "unknown schedule"),
        ({"channels": 2}, OptionError, "--channels must be 1"),
        ({"epochs": 0}, OptionError, "--epochs must be at least 1"),
        ({"mixup": -0.2}, OptionError, "--mixup is a Beta distribution's alpha"),
        ({"label_smoothing": 1.0}, OptionError, "--label-smoothing must be in"),
    ],
)
def test_bad_options_fail_before_the_data_is_read(tmp_path, options, error, words):
    with pytest.raises(error, match=words) as err:
        train_scratch(tmp_path / "does-not-exist", **{**FAST, **options})
    assert "\n" not in str(err.value)


def test_an_image_size_the_architecture_cannot_take_fails_before_training(tmp_path):
    data = make_folder(tmp_path / "data", n_train=2, n_valid=1)
    with pytest.raises(ModelError, match=r"cannot take 10x10 images: layer 4 .*--image-size 12"):
        train_scratch(data, out=tmp_path / "run", arch="larger_model", image_size=10, progress=False)
    assert not (tmp_path / "run").exists()


def test_unreadable_images_are_skipped_and_listed(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_train=4, n_valid=2)
    (data / "train" / "blue" / "broken.jpg").write_bytes(b"")
    (data / "valid" / "red" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = train_scratch(data, out=tmp_path / "run", epochs=2, **FAST)
    skipped = sorted(item["path"].rsplit("/", 1)[-1] for item in result.metrics["skipped"])
    assert skipped == ["broken.jpg", "truncated.png"]
    assert result.metrics["train"]["n"] == 8 and result.metrics["valid"]["n"] == 4
    messages = [r.getMessage() for r in caplog.records]
    skips = [m for m in messages if m.startswith("skipped") and "broken.jpg" in m]
    assert len(skips) == 1  # warned once while training, not once per epoch (the scan warned before)
