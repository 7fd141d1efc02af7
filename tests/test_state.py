"""Training state in safetensors + JSON: exact round trips, no pickle, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagefit.errors import ModelError
from imagefit.train.engine import state
from imagefit.train.engine.state import load_state, save_state


def test_nested_state_round_trips_exactly(tmp_path):
    optimizer = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    optimizer.param_groups[0]["params"][0].grad = torch.ones(2, 3)
    optimizer.param_groups[0]["params"][1].grad = torch.ones(2)
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),  # int keys, tuples (betas), 0-d tensors
        "numpy": np.random.get_state(),  # a tuple holding a uint32 array
        "torch": torch.get_rng_state(),
        "history": [{"epoch": 1, "val_loss": None, "lr": 0.1}],
        "flag": True,
    }
    path = tmp_path / "state.safetensors"
    save_state(path, state)
    back = load_state(path)
    assert back["history"] == state["history"] and back["flag"] is True
    assert torch.equal(back["torch"], state["torch"])
    assert back["numpy"][0] == "MT19937" and back["numpy"][1].dtype == np.uint32
    assert np.array_equal(back["numpy"][1], state["numpy"][1]) and back["numpy"][2:] == state["numpy"][2:]
    saved, loaded = state["optimizer"], back["optimizer"]
    assert set(loaded["state"]) == {0, 1}
    assert loaded["param_groups"][0]["betas"] == (0.9, 0.999)
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(loaded["state"][1][key], saved["state"][1][key])
    torch.optim.Adam(torch.nn.Linear(3, 2).parameters()).load_state_dict(loaded)


def test_the_file_is_safetensors_with_a_json_header_not_a_pickle(tmp_path):
    path = tmp_path / "state.safetensors"
    save_state(path, {"w": torch.arange(4.0)})
    raw = path.read_bytes()
    header_size = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and b"imagefit_state" in raw[8 : 8 + header_size]
    assert not raw.startswith(b"\x80") and b"PK" not in raw[:4]  # neither pickle nor torch.save's zip


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_state(path, {"epoch": 1})

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(state, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_state(path, {"epoch": 2})
    assert load_state(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


def test_unstorable_values_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store object"):
        save_state(tmp_path / "x.safetensors", {"thing": object()})
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelError, match="not an imagefit checkpoint"):
        load_state(tmp_path / "plain.safetensors")
    with pytest.raises(ModelError, match="no checkpoint at"):
        load_state(tmp_path / "missing.safetensors")
