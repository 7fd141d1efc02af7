"""The package's layers, as import-linter checks them: kept now, and broken by an upward import."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(project: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(LINT), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layers_and_acyclic_packages_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"Contracts: [3-9] kept, 0 broken", result.stdout)  # the layers of train/ too


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "imagefit", copy / "imagefit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_an_upward_import_breaks_the_layers(tmp_path):
    copy = _copy(tmp_path)
    digests = copy / "imagefit" / "data" / "digests.py"
    digests.write_text(digests.read_text() + "\nfrom imagefit.runs import load  # upward\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "imagefit.data is not allowed to import imagefit.runs" in result.stdout
    assert "imagefit.data.digests -> imagefit.runs" in result.stdout


def test_an_input_of_maps_importing_mapping_breaks_the_maps_pipeline(tmp_path):
    copy = _copy(tmp_path)
    key = copy / "imagefit" / "maps" / "inputs" / "key.py"
    key.write_text(key.read_text() + "\nfrom imagefit.maps.mapping.region import map_region  # upward\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "imagefit.maps.inputs is not allowed to import imagefit.maps.mapping" in result.stdout
    assert "imagefit.maps.inputs.key -> imagefit.maps.mapping.region" in result.stdout
