"""Track runs in MLflow: parameters, metrics per epoch and at the end, the run folder's files as artifacts.

With no URI (and no $MLFLOW_TRACKING_URI) the store is MLflow's embedded one beside the run folder:
an SQLite database and an artifacts folder in `mlruns/` next to RUN, so it works offline with
nothing to start (`mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db` shows it). A folder
given as the URI holds the same; a URI with a scheme (http://host:5000, sqlite:///path.db,
databricks://profile) goes to MLflow as it is. Only MLflow's client is used, never its global
"active run", so a tracked run does not disturb the caller's own MLflow runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from imagefit.train.callbacks.base import Callback
from imagefit.train.callbacks.tracked import epoch_metrics, need, numbers, run_files, run_params

STORE = "mlruns"  # the default store's folder, beside the run folder
DATABASE, ARTIFACT_DIR = "mlflow.db", "artifacts"
RUN_DIR_TAG = "imagefit.run_dir"
BATCH = 100  # parameters per request (MLflow's limit)


def store_of(target: str | None, run_dir: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location of a new experiment, or None to let the server choose)."""
    if target is None:
        target = os.environ.get("MLFLOW_TRACKING_URI") or str(run_dir.parent / STORE)
    scheme = urlparse(target).scheme
    if len(scheme) > 1:  # a URI (one letter is a Windows drive)
        if scheme == "sqlite":
            database = Path(urlparse(target).path.removeprefix("/"))
            return target, str(database.resolve().parent / ARTIFACT_DIR) if database.name else None
        return target, None
    folder = Path(target).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / DATABASE}", str(folder / ARTIFACT_DIR)


class MLflowTracker(Callback):
    """An MLflow run per imagefit run, named as its folder; a resumed run continues its MLflow run."""

    main_process_only = True  # one writer in a distributed run

    def __init__(self, uri: str | None = None, experiment: str | None = None):
        need("mlflow", "mlflow", "MLflow")
        self.uri = uri
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "imagefit"
        self.client, self.run_id, self.tracking_uri = None, None, None

    def on_run_begin(self, trainer, logs: dict) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        run_dir = Path(logs["run_dir"]).resolve()
        self.tracking_uri, artifacts = store_of(self.uri, run_dir)
        with _quiet_store():
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
            experiment = self._experiment_id(artifacts)
        self.run_id = self._earlier_run(experiment, run_dir) if logs.get("resumed") else None
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {RUN_DIR_TAG: str(run_dir), "imagefit.strategy": logs.get("strategy", "")}
        self.run_id = self.client.create_run(experiment, run_name=run_dir.name, tags=tags).info.run_id
        params = [Param(k, v) for k, v in run_params(logs).items()]
        for start in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[start : start + BATCH])

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self.run_id is not None:
            self._log(epoch_metrics(logs), step=int(logs["epoch"]))

    def on_run_end(self, trainer, logs: dict) -> None:
        if self.run_id is None:
            return
        metrics = logs.get("metrics") or {}
        final = numbers(metrics)  # skipped files (a list) and other text are not metrics
        self._log(final, step=metrics.get("epochs") or 0)
        for path in run_files(logs["run_dir"]):
            self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=logs.get("status", "FINISHED"))
        logging.getLogger(__name__).info("tracked in MLflow: run %s at %s", self.run_id, self.tracking_uri)

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, step) for key, value in values.items()]
        for start in range(0, len(metrics), BATCH * 10):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH * 10])

    def _experiment_id(self, artifacts: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment, artifact_location=artifacts)
        except MlflowException:  # created meanwhile by another run
            return self.client.get_experiment_by_name(self.experiment).experiment_id

    def _earlier_run(self, experiment: str, run_dir: Path) -> str | None:
        """The MLflow run of the same run folder, which a resumed run continues."""
        runs = self.client.search_runs([experiment], order_by=["attributes.start_time DESC"], max_results=500)
        return next((r.info.run_id for r in runs if r.data.tags.get(RUN_DIR_TAG) == str(run_dir)), None)


@contextlib.contextmanager
def _quiet_store():
    """MLflow and Alembic announce creating and migrating a new store at INFO: keep that to warnings."""
    loggers = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "alembic.runtime.migration")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
