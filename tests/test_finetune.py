"""The finetune strategy: stage specs, coarse groups, frozen parts, discriminative rates, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import timm
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import OptionError
from imagefit.train import train
from imagefit.train.callbacks import Callback
from imagefit.train.engine.stages import coarse_groups, parse_stages
from tests.conftest import TINY_MODEL


def train_finetune(data, model, weights, out, **kwargs):
    """The finetune strategy through the public entry point."""
    return train(data, "finetune", out=out, model=model, weights=weights, **kwargs)


def test_coarse_groups_end_with_the_classifier_alone() -> None:
    model = timm.create_model("tf_efficientnet_lite0")
    groups = coarse_groups(model)
    assert groups[-1] == ["classifier.bias", "classifier.weight"]
    assert groups[0][0] == "conv_stem.weight"
    assert sum(len(g) for g in groups) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("head:1", "bad stage"),
        ("top9:1:1e-3", "unfreezes 9"),
        ("head:0:1e-3", "at least one epoch"),
        ("head:1:-1", "must be a positive number"),
        ("", "empty"),
    ],
)
def test_bad_stage_specs(spec: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        parse_stages(spec, n_groups=5)


class _Spy(Callback):
    """Records parameter-group learning rates at each epoch's start and the model after stage 1."""

    def __init__(self) -> None:
        self.rates: list[list[float]] = []
        self.after_head: dict[str, torch.Tensor] = {}

    def on_epoch_begin(self, trainer, logs) -> None:
        self.rates.append([g["lr"] for g in trainer.optimizer.param_groups])

    def on_epoch_end(self, trainer, logs) -> None:
        if logs["epoch"] == 1:
            self.after_head = {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_head_stage_freezes_the_backbone_and_later_stages_use_falling_rates(
    tiny_data: Path, tmp_path
) -> None:
    torch.manual_seed(0)
    start = timm.create_model(TINY_MODEL).state_dict()
    spy = _Spy()
    result = train_finetune(
        tiny_data,
        TINY_MODEL,
        "none",
        tmp_path / "run",
        workers=0,
        progress=False,
        callbacks=[spy],
        stages="head:1:1e-2,top2:1:1e-3",
        batch_size=8,
        augment=False,
    )
    after = spy.after_head
    moved = [k for k in start if not k.startswith("classifier") and not torch.equal(start[k], after[k])]
    assert moved == []  # weights and BatchNorm running statistics of the frozen backbone
    assert not torch.equal(start["classifier.weight"][:2], after["classifier.weight"])
    head_rates, top_rates = spy.rates
    assert len(head_rates) == 1 and len(top_rates) == 3
    assert top_rates[0] / top_rates[-1] == pytest.approx(0.1)
    assert top_rates[0] < top_rates[1] < top_rates[2]
    assert result.metrics["valid"]["n"] == 8


def test_cli_finetune_run_loads_and_predicts(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        str(tiny_data),
        "--strategy",
        "finetune",
        "--model",
        TINY_MODEL,
        "--weights",
        "none",
        "--stages",
        "head:1:1e-2,all:1:1e-3",
        "-b",
        "8",
        "-j",
        "0",
        "--out",
        str(run),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "finetune" and config["options"]["optimizer"] == "adamw"
    assert [r["stage"] for r in csv.DictReader((run / "history.csv").open())] == ["head:1:1e-2", "all:1:1e-3"]
    out = tmp_path / "p.csv"
    assert (
        CliRunner()
        .invoke(
            cli,
            [
                "predict",
                str(run),
                str(tiny_data / "valid"),
                "--csv",
                str(out),
                "--engine",
                "torch",
                "-j",
                "0",
            ],
        )
        .exit_code
        == 0
    )
    assert len(list(csv.DictReader(out.open()))) == 8
    bad = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "other"), "--stages", "top:1"])
    assert bad.exit_code == 2 and "bad stage" in bad.output


def test_frozen_norms_keep_batchnorm_statistics_in_unfrozen_stages(tiny_data: Path, tmp_path) -> None:
    torch.manual_seed(0)
    start = timm.create_model(TINY_MODEL).state_dict()
    result = train_finetune(
        tiny_data,
        TINY_MODEL,
        "none",
        tmp_path / "run",
        workers=0,
        progress=False,
        stages="all:2:1e-3",
        batch_size=8,
        augment=False,
    )
    end = result.classifier.model.state_dict()
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(start[k], end[k]) for k in stats)
    weights = [k for k in start if k.endswith("conv_stem.weight")]
    assert not torch.equal(start[weights[0]], end[weights[0]])  # while the weights did train


class _HeadAtStart(Callback):
    """Records the classifier as training begins."""

    def on_train_begin(self, trainer, logs) -> None:
        self.weight = trainer.model.get_classifier().weight.detach().clone()


def test_linear_head_init_starts_from_the_linear_strategys_head(tiny_data: Path, tmp_path) -> None:
    from imagefit.train import train

    linear = train(
        tiny_data, model=TINY_MODEL, weights="none", out=tmp_path / "lin", workers=0, progress=False
    )
    spy, random_spy = _HeadAtStart(), _HeadAtStart()
    options = {"stages": "top1:1:1e-3", "batch_size": 8, "augment": False, "workers": 0, "progress": False}
    train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "ft", callbacks=[spy], **options)
    train_finetune(
        tiny_data, TINY_MODEL, "none", tmp_path / "rnd", callbacks=[random_spy], head_init="random", **options
    )
    expected = linear.classifier.model.get_classifier().weight.detach()
    assert torch.allclose(spy.weight, expected, atol=1e-6)
    assert not torch.allclose(random_spy.weight, expected, atol=1e-2)
    with pytest.raises(OptionError, match="head-init"):
        train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "bad", head_init="zeros", **options)


class _Interrupt(Callback):
    """Ctrl-C as the given epoch begins."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_begin(self, trainer, logs) -> None:
        if logs["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_finetune_run_resumes_to_the_same_weights(tiny_data: Path, tmp_path: Path) -> None:
    from imagefit.train import resume

    options = {"stages": "head:1:1e-2,top2:2:1e-3", "batch_size": 8, "workers": 0, "progress": False}
    straight = train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "straight", seed=3, **options)
    run = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train_finetune(tiny_data, TINY_MODEL, "none", run, seed=3, callbacks=[_Interrupt(2)], **options)
    assert not (run / "model.safetensors").exists()
    resumed = resume(run, workers=0, progress=False)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [r["stage"] for r in rows] == ["head:1:1e-2", "top2:2:1e-3", "top2:2:1e-3"]
    a, b = straight.classifier.model.state_dict(), resumed.classifier.model.state_dict()
    assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel()) < 1e-6
    assert resumed.metrics["valid"]["loss"] == pytest.approx(straight.metrics["valid"]["loss"], rel=1e-5)


def test_resuming_a_linear_run_is_a_clear_error(tmp_path: Path) -> None:
    from dataclasses import asdict

    from imagefit.data.atomic import write_json
    from imagefit.runs import RunConfig

    config = RunConfig("efficientnet_lite0", "tf_efficientnet_lite0", "none", ["a", "b"], {}, "linear", 0)
    write_json(tmp_path / "config.json", asdict(config))
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert "linear run, which has no epochs to resume" in result.output


def test_the_saved_weights_blend_the_fine_tuned_and_probe_weights(tiny_data: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from imagefit.train.engine.state import load_state

    options = {"stages": "head:1:1e-2,top2:1:1e-3", "batch_size": 8, "workers": 0, "progress": False}
    run = train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "wise", wise=0.3, **options)
    probe = load_state(run.run_dir / "checkpoints" / "probe.safetensors")["model"]
    tuned = load_state(run.run_dir / "checkpoints" / "best.safetensors")["model"]
    saved = load_file(str(run.run_dir / "model.safetensors"))
    moved = [k for k in saved if saved[k].is_floating_point() and not torch.equal(probe[k], tuned[k])]
    assert moved  # fine-tuning changed some weights, so the blend is not trivially either one
    for k in moved:
        assert torch.allclose(saved[k], 0.3 * tuned[k] + 0.7 * probe[k], atol=1e-6)
    assert run.metrics["wise"]["fine_tuned_share"] == 0.3
    assert run.metrics["wise"]["fine_tuned_only"]["valid"]["n"] == run.metrics["valid"]["n"] == 8
    plain = train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "plain", wise=1.0, **options)
    assert "wise" not in plain.metrics and not (plain.run_dir / "checkpoints" / "probe.safetensors").exists()
    best = load_state(plain.run_dir / "checkpoints" / "best.safetensors")["model"]
    assert torch.equal(load_file(str(plain.run_dir / "model.safetensors"))[moved[0]], best[moved[0]])
    with pytest.raises(OptionError, match="--wise"):
        train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "bad", wise=0.0, **options)


def test_a_finetune_run_predicts_the_unlabelled_test_folder(tiny_data: Path, tmp_path) -> None:
    from tests.conftest import COLOURS, write_image

    for i, name in enumerate(("red", "blue", "red")):
        write_image(tiny_data / "test" / f"img{i}.jpg", COLOURS[name], 100 + i)
    options = {"stages": "head:1:1e-2", "batch_size": 8, "augment": False, "workers": 0, "progress": False}
    result = train_finetune(tiny_data, TINY_MODEL, "none", tmp_path / "run", **options)
    rows = list(csv.DictReader((result.run_dir / "test_predictions.csv").open()))
    assert [Path(r["path"]).name for r in rows] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert {r["class"] for r in rows} <= {"blue", "red"}
    for r in rows:
        assert abs(float(r["p_blue"]) + float(r["p_red"]) - 1) < 1e-4
        assert float(r["probability"]) == max(float(r["p_blue"]), float(r["p_red"]))


@pytest.mark.parametrize(
    ("strategy", "option", "takers"),
    [("linear", "epochs", "scratch"), ("scratch", "stages", "finetune"), ("finetune", "arch", "scratch")],
)
def test_an_option_the_strategy_does_not_take_is_refused_naming_those_that_do(
    tiny_data: Path, tmp_path, strategy, option, takers
) -> None:
    with pytest.raises(
        OptionError, match=f"--{option} is not an option of the {strategy} strategy: only {takers}"
    ):
        train(tiny_data, strategy, out=tmp_path / "run", **{option: 3})
    assert not (tmp_path / "run").exists()


def test_a_stage_deeper_than_the_model_fails_before_the_first_epoch() -> None:
    from imagefit.train.engine.trainer import Trainer
    from imagefit.train.options import FinetuneOptions

    stages = FinetuneOptions(stages="head:1:1e-3,top99:1:1e-4").stage_plan()  # the model is not known yet
    model = timm.create_model(TINY_MODEL, num_classes=2)
    with pytest.raises(OptionError, match="top99 unfreezes 99 block groups but the model has"):
        Trainer(model, [], None, stages=stages)
