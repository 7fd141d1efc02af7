"""The run folder: its files' names, its config, its history, and its model saved and loaded."""

from imagefit.runs.config import RunConfig, read_config, write_config
from imagefit.runs.folder import RunFolder, check_out_folder, new_run_dir
from imagefit.runs.history import read_history, write_history
from imagefit.runs.saved import load, open_model, predict, save_run

__all__ = [
    "RunConfig",
    "RunFolder",
    "check_out_folder",
    "load",
    "new_run_dir",
    "open_model",
    "predict",
    "read_config",
    "read_history",
    "save_run",
    "write_config",
    "write_history",
]
