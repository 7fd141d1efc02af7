"""The built-in demo on a short setting: the CNN from scratch learns the digits, ImageNet sees a cat."""

from __future__ import annotations

from pathlib import Path

from imagefit.demo import demo

DOMESTIC_CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_short_demo_learns_digits_from_scratch_and_names_the_cat(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = demo(out, epochs=1, transfer=False, progress=False)
    valid = result.scratch.metrics["valid"]
    assert valid["n"] == 355  # every 5th digit of each class, of 1,797
    assert valid["accuracy"] > 0.8  # chance is 0.1; one epoch gave 0.90, twelve about 0.99
    assert result.transfer is None
    chelsea = next(p for p in result.photos if Path(p["path"]).stem == "chelsea")
    assert chelsea["predictions"][0]["index"] in DOMESTIC_CATS
    assert len(chelsea["predictions"]) == 5
    assert [Path(p["path"]).stem for p in result.photos] == ["chelsea", "coffee", "astronaut", "rocket"]
    assert {p.name for p in tmp_path.iterdir()} == {"demo"}  # everything under OUT
    assert (out / "scratch" / "model.safetensors").is_file()
