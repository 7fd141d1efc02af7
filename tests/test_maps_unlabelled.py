"""map-train --unlabelled: pseudo-labels of the area to map (its labels never opened), class-balanced
thresholds, pooled validation on several held-out images, and a time budget, by the CLI and Python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.errors import OptionError
from imagefit.maps.training.crops import IGNORED
from imagefit.maps.training.pseudo_labels import BalancedThresholds, pseudo_label_loss, pseudo_targets
from imagefit.maps.training.refs import choose_valid, split_refs, tile_of
from imagefit.runs import read_history
from tests._tiles import make_tiles

AERIAL = [f"T{t}P0{p}" for t in (1, 2, 3, 4, 5, 8) for p in range(1, 10)]  # the tile-6 protocol's pool
TINY_UNET = ["--model", "unet", "--crop", "64", "--batch-size", "2", "--steps", "5", "--epochs", "1",
             "--stages", "all:1:5e-3", "--balance", "--unlabelled-batch", "2"]  # fmt: skip


def record_opened(monkeypatch) -> list[Path]:
    """Every path that rasterio or Pillow opens from now on, resolved."""
    import PIL.Image
    import rasterio

    opened: list[Path] = []
    for module, name in ((rasterio, "open"), (PIL.Image, "open")):
        real = getattr(module, name)

        def spy(path, *args, _real=real, **kwargs):
            opened.append(Path(str(path)).resolve())
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return opened


def test_map_train_learns_from_unlabelled_images_and_never_opens_their_labels(tmp_path, monkeypatch):
    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "A2", "B1"), size=(96, 128))
    region = make_tiles(tmp_path / "region", refs=("R1", "R2"), size=(96, 128))
    for label in (region / "theme").iterdir():
        label.write_bytes(b"not a raster: reading it would fail")
    opened = record_opened(monkeypatch)
    run = tmp_path / "run"
    args = ["map-train", str(tiles), "--train", "A1,A2", "--valid", "B1", *TINY_UNET, "-o", str(run)]
    result = CliRunner().invoke(
        cli, ["-q", *args, "--unlabelled", f"{region}/3band/*.png", "--budget", "0.1"]
    )
    assert result.exit_code == 0, result.output
    theme = (region / "theme").resolve()
    assert not [p for p in opened if theme in p.parents], "a label file of the unlabelled images was opened"
    assert {(region / "3band" / f"{r}.png").resolve() for r in ("R1", "R2")} <= set(opened)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["unlabelled"]["images"] == 2 and metrics["unlabelled"]["method"] == "fixmatch"
    assert metrics["budget"]["minutes"] == 0.1
    history = read_history(run / "history.csv")
    assert history[0]["val_miou"] is not None and 0 < history[-1]["val_miou"] <= 1
    assert history[-1]["unlabelled_loss"] is not None and 0 < history[-1]["pseudo_labelled"] <= 1
    config = json.loads((run / "config.json").read_text())
    assert (
        config["options"]["unlabelled"] == [f"{region}/3band/*.png"]
        and config["options"]["monitor"] == "val_miou"
    )
    assert "valid B1 (their crops pooled): mIoU" in result.output


def test_the_python_function_takes_the_same_options(tmp_path):
    """Mean teacher, a budget and two validation images, by `train_map`."""
    from imagefit.maps.training.map_train import train_map

    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "A2", "A3", "B1", "B2"), size=(96, 128))
    region = make_tiles(tmp_path / "region", refs=("R1",), size=(96, 128))
    options = dict(model="unet", crop=64, batch_size=2, steps=4, epochs=1, stages="all:1:5e-3", balance=True)
    run = train_map(
        tiles, ["A1", "A2", "B1"], ["A3", "B2"], out=tmp_path / "run", progress=False, **options,
        unlabelled=str(region / "3band"), semi="mean-teacher", unlabelled_batch=1, budget=0.25,
    )  # fmt: skip
    m = run.metrics
    assert m["valid_refs"] == ["A3", "B2"] and m["valid_map"]["ref"] == "A3"
    assert m["unlabelled"]["method"] == "mean-teacher" and m["unlabelled"]["images"] == 1
    assert m["budget"]["minutes"] == 0.25 and m["budget"]["seconds_per_epoch"] > 0
    assert m["valid_patches"]["n"] == 32 * 64 * 64  # 31 crops asked for (2000 // 64), 16 of each image
    assert len(read_history(run.run_dir / "history.csv")) >= 1  # as many as fit (tests/test_time_budget.py)


def test_valid_takes_several_refs_as_train_does():
    from imagefit.cli.maps import join_values

    args = ["tiles", "--valid", "A3", "B2", "--train", "A1", "A2", "--model", "unet"]
    joined = join_values(join_values(args, "--train"), "--valid")
    assert joined == ["tiles", "--valid", "A3,B2", "--train", "A1,A2", "--model", "unet"]


def test_unlabelled_images_train_decoders_only_and_need_the_tiles_bands(tmp_path):
    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "B1"), size=(70, 90))
    tiny_cnn = ["--model", "conv8@3-pool2-dense16", "--patch", "12"]
    args = ["map-train", str(tiles), "--valid", "B1", *tiny_cnn, "--unlabelled", str(tiles / "3band")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--unlabelled trains decoders" in result.output
    with pytest.raises(OptionError, match="--semi"):
        from imagefit.maps.training.options import MapTrainOptions

        MapTrainOptions(model="unet", unlabelled=("x",), semi="co-training")
    # sized for the hour on 2 cores: an epoch with unlabelled images costs about 1.7x
    assert (
        MapTrainOptions(model="unet").epochs == 8
        and MapTrainOptions(model="unet", unlabelled="x").epochs == 5
    )


def test_each_class_keeps_its_own_most_confident_share():
    t = BalancedThresholds(3, share=0.5, momentum=0.9)
    assert (t.values() > 1).all()  # nothing measured yet: no pseudo-label
    # class 0 is predicted surely (0.9-0.99), class 1 unsurely (0.4-0.49), class 2 on too few pixels
    confidence = torch.cat([torch.linspace(0.9, 0.99, 100), torch.linspace(0.4, 0.49, 100), torch.ones(10)])
    predicted = torch.tensor([0] * 100 + [1] * 100 + [2] * 10)
    valid = torch.ones(210, dtype=torch.bool)
    t.update(confidence, predicted, valid)
    values = t.values()
    assert values[0] == pytest.approx(float(confidence[50]), abs=1e-6)  # half of class 0 at or above
    assert values[1] == pytest.approx(float(confidence[150]), abs=1e-6)  # its own median, not 0.9's
    assert values[2] > 1  # under MIN_PIXELS: still unmeasured
    kept = confidence >= torch.as_tensor(values, dtype=confidence.dtype)[predicted]
    assert int(kept[:100].sum()) == 50 and int(kept[100:200].sum()) == 50
    t.update(confidence + 0.01, predicted, valid)  # a moving average toward the new quantile
    assert t.values()[0] == pytest.approx(0.9 * values[0] + 0.1 * (values[0] + 0.01), abs=1e-6)
    assert BalancedThresholds(2, share=1.0).values().shape == (2,)
    with pytest.raises(OptionError, match="pseudo-share"):
        BalancedThresholds(2, share=0)


def test_pseudo_labels_keep_the_confident_pixels_only():
    logits = torch.zeros(1, 3, 16, 16)
    logits[0, 0, :8] = torch.linspace(1, 8, 16)  # class 0 on the top half, sure on the right
    logits[0, 1, 8:] = torch.linspace(1, 8, 16)  # class 1 on the bottom half
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    keep[0, :, 15] = False  # a cut-out column: never pseudo-labelled
    targets, confidence = pseudo_targets(logits, keep, BalancedThresholds(3, share=0.5, momentum=0))
    assert (targets[0, :8, 7:15] == 0).all() and (targets[0, 8:, 7:15] == 1).all()  # 64 of 120
    assert (targets[0, :, :7] == IGNORED).all() and (targets[0, :, 15] == IGNORED).all()
    assert confidence[0, 0, 14] > confidence[0, 0, 0]
    loss = pseudo_label_loss(logits, targets)
    sure = targets >= 0
    expected = torch.nn.functional.cross_entropy(
        logits.permute(0, 2, 3, 1)[sure], targets[sure], reduction="sum"
    )
    assert float(loss) == pytest.approx(float(expected) / targets.numel(), rel=1e-5)


def test_fixmatch_waits_for_its_warm_up_then_ramps_and_mean_teacher_follows_the_student(tmp_path):
    from imagefit.maps.training.unlabelled import FixMatch, MeanTeacher, UnlabelledImages

    region = make_tiles(tmp_path / "region", refs=("R1",), size=(40, 40))
    images = UnlabelledImages(str(region / "3band"), 32)
    config = {"mean": (0.5,) * 3, "std": (0.5,) * 3}
    model = torch.nn.Conv2d(3, 3, 1)
    fix = FixMatch(images, config, batch_size=2, weight=2.0)
    assert fix(model, 0.05) is None and fix.ramp(0.2) == pytest.approx(1.0) and fix.ramp(0.5) == 2.0
    loss = fix(model, 0.5)
    assert loss is not None and loss.requires_grad
    mean = MeanTeacher(images, config, batch_size=2)
    mean(model, 0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    mean(model, 0.5)  # the teacher moves 1 % of the way to the student
    difference = (model.weight - mean.teacher.weight).mean().detach()
    assert float(difference) == pytest.approx(0.99, rel=1e-4)


def test_the_tool_holds_out_one_image_of_each_of_four_tiles():
    chosen = choose_valid(AERIAL)
    assert len(chosen) == 4 and len({tile_of(r) for r in chosen}) == 4
    assert chosen == ["T1P09", "T3P09", "T4P09", "T8P09"]
    assert choose_valid(["A1", "A2", "B1"]) == ["B1"]  # few refs: the last validates
    train, valid = split_refs(AERIAL, [], None)
    assert valid == chosen and len(train) == 50 and not set(train) & set(valid)
    assert split_refs(["A1", "A2", "B1"], ["A1"], None) == (["A1"], ["B1"])
    assert split_refs(AERIAL, [], "T3P01,T5P02")[1] == ["T3P01", "T5P02"]
    with pytest.raises(OptionError, match="both train and validate"):
        split_refs(AERIAL, ["T3P01"], ["T3P01"])


def test_validation_crops_are_drawn_from_every_validation_image(tmp_path):
    from imagefit.maps.inputs.tileset import TileSet
    from imagefit.maps.training.refs import pooled_crop_batches

    tiles = TileSet(make_tiles(tmp_path / "tiles", refs=("A1", "B1", "C1"), size=(64, 64)))
    config = {"mean": (0.5,) * 3, "std": (0.5,) * 3}
    batches = pooled_crop_batches(tiles, ["A1", "B1", "C1"], 32, 1, 3, 16, config)
    x = torch.cat([b[0] for b in batches])
    assert len(x) == 24  # MIN_VALID_CROPS, 8 of each image
    means = [float(x[i * 8 : (i + 1) * 8].mean()) for i in range(3)]
    assert len({round(m, 4) for m in means}) == 3 and np.isfinite(means).all()


def test_the_readme_commands_for_a_region_to_map_run_as_written(tmp_path, monkeypatch):
    """The README's two commands, on tiny tiles and region; the training shortened by options added
    after it (the last value of an option wins)."""
    import shlex

    from PIL import Image

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if line.startswith("imagefit map") and "region" in line]
    assert len(lines) == 2 and "--unlabelled 'region/*.tif'" in lines[0], lines
    make_tiles(tmp_path / "tiles", refs=("A1", "A2", "B1"), size=(96, 128))
    for ref in ("R1", "R2"):
        image = Image.open(make_tiles(tmp_path / "r", refs=(ref,), size=(96, 128)) / "3band" / f"{ref}.png")
        (tmp_path / "region").mkdir(exist_ok=True)
        image.save(tmp_path / "region" / f"{ref}.tif")
    monkeypatch.chdir(tmp_path)
    short = [
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "3",
        "--stages",
        "all:1:5e-3",
        "--budget",
        "0.05",
    ]
    train = CliRunner().invoke(cli, ["-q", *shlex.split(lines[0])[1:], *short, "--unlabelled-batch", "1"])
    assert train.exit_code == 0, train.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["unlabelled"]["images"] == 2
    mapped = CliRunner().invoke(cli, shlex.split(lines[1])[1:])
    assert mapped.exit_code == 0, mapped.output
    assert {p.name for p in (tmp_path / "region-maps").glob("*-map.tif")} == {"R1-map.tif", "R2-map.tif"}
