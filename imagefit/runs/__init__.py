"""The run folder: its files' names, its config, its history, and its model saved and loaded."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "RunConfig": "imagefit.runs.config",
    "RunFolder": "imagefit.runs.folder",
    "check_out_folder": "imagefit.runs.folder",
    "load": "imagefit.runs.saved",
    "new_run_dir": "imagefit.runs.folder",
    "open_model": "imagefit.runs.saved",
    "predict": "imagefit.runs.saved",
    "read_config": "imagefit.runs.config",
    "read_history": "imagefit.runs.history",
    "save_run": "imagefit.runs.saved",
    "write_config": "imagefit.runs.config",
    "write_history": "imagefit.runs.history",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
