"""The Keras Tuner search over GRU/LSTM forecasters, and the job that ends in a GRU-vs-LSTM verdict.

`tune` loads the data, resolves the search space, runs one sub-search per cell (the cell fixed,
the same seed, so both cells see the same draws of every other hyperparameter), retrains the best
model of each cell with `forecaster.runs.train.train` (a normal run directory), and writes the
comparison. The search itself is Keras Tuner's, with these repairs:

- every trial is seeded with the base seed plus a stable hash of its hyperparameters, so a trial
  gives the same result in any process: after a resume, on any worker;
- Bayesian optimisation draws its restarts from a random state derived from (seed, trial count)
  instead of one that is not saved (a resumed search re-proposed a trial it had run), and falls
  back to an untried random point when the Gaussian process proposes a tried one
  (keras-team/keras-tuner#227, #608);
- oracle, trial and tuner files are written atomically, so `kill -9` cannot leave half a JSON;
- Hyperband's bookkeeping values (tuner/epochs, tuner/bracket, ...) are stripped before retraining;
- a time budget stops new trials (never a running one);
- the first trial of every cell is `forecaster train`'s recipe moved into the space, trained for
  max_epochs even under Hyperband, so a short search always weighs a model known to train well.

Heavy imports (keras, keras_tuner, tensorflow) stay inside functions.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.config import CELLS, DataConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.errors import ConfigError, ForecasterError
from forecaster.files import write_text_atomic
from forecaster.report.comparison import CellResult, comparison_json, write_comparison
from forecaster.tune.compare import choose_winner
from forecaster.tune.config import (
    Distributed,
    SearchSpace,
    SpaceOverrides,
    TuneConfig,
    TuningError,
    format_duration,
)
from forecaster.tune.data import TuningData, prepare_tuning_data
from forecaster.tune.directory import (
    RUNNER_UP_DIR,
    TUNER_DIR,
    WINNER_DIR,
    check_out,
    check_worker_identity,
    open_out,
    search_identity,
)
from forecaster.tune.hyperparameters import (
    clean_values,
    declare,
    describe,
    hyperband_trials,
    model_config,
    oracle_seed,
    resolve_space,
    trial_seed,
)
from forecaster.tune.progress import SearchProgress, StatusCallback

if TYPE_CHECKING:
    import keras


OBJECTIVE = "val_loss"


# --- Keras Tuner classes (built on first use: keras_tuner imports TensorFlow) ------------------


class _Fatal(Exception):
    """Carries a ForecasterError through Keras Tuner, which marks other errors as failed trials."""


@cache
def _kt_classes() -> dict[str, Any]:
    import keras
    import keras_tuner as kt
    from keras_tuner.src import errors as kt_errors
    from keras_tuner.src.engine import trial as trial_module
    from keras_tuner.src.engine.hyperparameters import Float

    from forecaster.model.build import build_model
    from forecaster.model.fit import deadline_callback, seed_everything

    class FatalForecasterError(kt_errors.FatalError, _Fatal):
        """Stops the search: Keras Tuner re-raises FatalError subclasses."""

    class OracleMixin:
        """Atomic saves, a deadline for new trials, and progress events on the chief."""

        cell: str = ""
        deadline: float | None = None
        budget_spent: bool = False
        progress: SearchProgress | None = None

        @kt.synchronized
        def create_trial(self, tuner_id: str) -> Any:
            this: Any = self
            deadline = self.deadline
            if (
                deadline is not None
                and time.monotonic() >= deadline
                and tuner_id not in this.ongoing_trials
            ):
                self.budget_spent = True
                this.tuner_ids.discard(tuner_id)
                return trial_module.Trial(this.get_space(), status=trial_module.TrialStatus.STOPPED)
            trial = super().create_trial(tuner_id)  # type: ignore[misc]
            if trial.status == trial_module.TrialStatus.RUNNING and self.progress is not None:
                self.progress.trial_started(self.cell, trial.trial_id, trial.hyperparameters.values)
            return trial

        def _random_values(self) -> dict[str, Any] | None:
            # The first trial is `forecaster train`'s recipe (the hyperparameters' defaults): a
            # short search then always weighs a model known to train well. The draws after it
            # are the ones a search without it would make.
            this: Any = self
            if not this._tried_so_far:
                return dict(this.hyperparameters.values)
            values: dict[str, Any] | None = super()._random_values()  # type: ignore[misc]
            return values

        @kt.synchronized
        def end_trial(self, trial: Any) -> None:
            super().end_trial(trial)  # type: ignore[misc]
            if self.progress is not None:
                this: Any = self
                ended = this.trials[trial.trial_id]
                if ended.status in ("COMPLETED", "FAILED"):
                    self.progress.trial_ended(
                        self.cell,
                        ended.trial_id,
                        ended.hyperparameters.values,
                        ended.status,
                        ended.score,
                    )

        def save(self) -> None:
            this: Any = self
            _write_json(this._get_oracle_fname(), this.get_state())

        def reload(self) -> None:
            # Keras Tuner writes trial.json, then oracle.json; a kill between the two leaves:
            this: Any = self
            super().reload()  # type: ignore[misc]
            for trial_id in [t for t in this.trials if t not in this.start_order]:
                # a trial file the oracle never recorded: it is created again, same id and values;
                del this.trials[trial_id]
            for trial_id in list(this._retry_queue):
                # or a trial that finished but was still "ongoing" in oracle.json: keep its result.
                if this.trials[trial_id].status in ("COMPLETED", "FAILED"):
                    this._retry_queue.remove(trial_id)
                    this._run_times[trial_id] += 1
                    if trial_id not in this.end_order:
                        this.end_order.append(trial_id)

        def _save_trial(self, trial: Any) -> None:
            this: Any = self
            path = Path(this._get_trial_dir(trial.trial_id)) / "trial.json"
            _write_json(str(path), trial.get_state())

    class RandomOracle(OracleMixin, kt.oracles.RandomSearchOracle):
        pass

    class HyperbandOracle(OracleMixin, kt.oracles.HyperbandOracle):
        def _random_trial(self, trial_id: str, bracket: dict[str, Any]) -> dict[str, Any]:
            # The starting point trains for max_epochs, as the other tuners train every trial:
            # a first round of two epochs ranks slow starters low (bench/tuning.md), and a
            # budget too short for the first bracket would judge everything there.
            this: Any = self
            first = not this._tried_so_far
            response: dict[str, Any] = super()._random_trial(trial_id, bracket)
            if first and response["status"] == "RUNNING":
                response["values"]["tuner/epochs"] = this.max_epochs
            return response

    class BayesianOracle(OracleMixin, kt.oracles.BayesianOptimizationOracle):
        def populate_space(self, trial_id: str) -> dict[str, Any]:
            # Keras Tuner keeps the restarts' RandomState in memory only, so a resumed search
            # started it over and re-proposed a trial it had already run. Derive it from the
            # seed and the number of trials instead: the same proposals with or without a resume.
            this: Any = self
            this._random_state = np.random.RandomState(
                (this.seed * 1_000_003 + len(this.trials)) % 2**32
            )
            response: dict[str, Any] = super().populate_space(trial_id)
            if response["status"] != "RUNNING" or not response.get("values"):
                return response
            values = self._rounded(response["values"])
            if this._duplicate(values):
                # The Gaussian process proposed a tried point (keras-team/keras-tuner#227).
                values = this._random_values()
                if values is None:
                    return {"status": "STOPPED", "values": None}
                values = self._rounded(values)
            return {"status": "RUNNING", "values": values}

        def _rounded(self, values: dict[str, Any]) -> dict[str, Any]:
            # The optimiser's last bits vary with BLAS threading, and the trial seed hashes the
            # values: round continuous ones to 3 significant digits to keep trials stable.
            this: Any = self
            values = dict(values)
            for hp in this.hyperparameters.space:
                if isinstance(hp, Float) and hp.step is None and hp.name in values:
                    rounded = float(f"{values[hp.name]:.3g}")
                    values[hp.name] = min(max(rounded, hp.min_value), hp.max_value)
            return values

    class ForecastHyperModel(kt.HyperModel):
        """Builds a forecaster from a trial's values; `fit` windows the data for its window."""

        def __init__(self, search: _Search, cell: str) -> None:
            super().__init__(name=f"forecaster_{cell}")
            self.search, self.cell = search, cell

        def build(self, hp: Any) -> keras.Model:
            values = declare(hp, self.search.space, self.cell)
            seed_everything(trial_seed(self.search.config.seed, hp.values))
            data = self.search.data
            try:
                return build_model(
                    model_config(values, self.search.season, self.search.config.loss),
                    window=int(values["window"]),
                    n_features=data.n_features,
                    horizon=data.horizon,
                    n_targets=data.n_targets,
                    target_index=data.data.target_index,
                    sensor_channels=len(data.data.features),
                )
            except ForecasterError as exc:
                raise FatalForecasterError(exc) from exc

        def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
            search = self.search
            window = int(hp.get("window"))
            train, val = search.data.train(window), search.data.val(window)
            epochs = int(kwargs.pop("epochs", search.config.max_epochs))
            kwargs.pop("verbose", None)
            callbacks = [*kwargs.pop("callbacks", []), *trial_callbacks(search.config.patience)]
            tuner = search.tuners.get(self.cell)
            deadline = tuner.oracle.deadline if tuner is not None else None
            if deadline is not None:
                # A trial started just before the deadline would otherwise run its whole schedule.
                callbacks.append(deadline_callback(deadline))
            progress = search.progress if search.role != "chief" else None
            if progress is not None:
                callbacks.append(
                    keras.callbacks.LambdaCallback(
                        on_epoch_end=lambda epoch, logs: progress.epoch_ended(
                            self.cell, epoch + 1, epochs
                        )
                    )
                )
            return model.fit(
                train.x,
                train.y,
                validation_data=(val.x, val.y),
                epochs=epochs,
                batch_size=search.config.batch_size,
                shuffle=True,
                callbacks=callbacks,
                verbose=0,
                **kwargs,
            )

    class ForecastTuner(kt.Tuner):
        """Keras Tuner's Tuner with Hyperband's epoch handling for any oracle, atomic saves and
        progress events (local and worker; the chief's come from its oracle)."""

        progress: SearchProgress | None = None
        cell: str = ""

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            values = trial.hyperparameters.values
            if "tuner/epochs" in values:  # Hyperband: train on from the promoted trial's epoch
                kwargs["epochs"] = values["tuner/epochs"]
                kwargs["initial_epoch"] = values["tuner/initial_epoch"]
            try:
                return super().run_trial(trial, *args, **kwargs)
            finally:
                # Free the trial's graph before the next one (Keras Tuner also clears on build).
                keras.backend.clear_session()
                gc.collect()

        def _build_hypermodel(self, hp: Any) -> Any:
            model = super()._build_hypermodel(hp)
            if "tuner/trial_id" in hp.values:  # Hyperband promotion: start from that checkpoint
                trial_id = hp.values["tuner/trial_id"]
                config_path = Path(self._get_build_config_fname(trial_id))
                model.build_from_config(json.loads(config_path.read_text(encoding="utf-8")))
                # Build Adam's slots first, or Keras 3 skips the saved optimizer state ("Skipping
                # variable loading for optimizer") and the promoted trial restarts its moments.
                model.optimizer.build(model.trainable_variables)
                model.load_weights(self._get_checkpoint_fname(trial_id))
            return model

        def on_trial_begin(self, trial: Any) -> None:
            super().on_trial_begin(trial)
            if self.progress is not None:
                self.progress.trial_started(self.cell, trial.trial_id, trial.hyperparameters.values)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            if self.progress is not None:
                ended = self.oracle.get_trial(trial.trial_id)
                if ended.status in ("COMPLETED", "FAILED"):
                    self.progress.trial_ended(
                        self.cell,
                        trial.trial_id,
                        trial.hyperparameters.values,
                        ended.status,
                        ended.score,
                    )

        def save(self) -> None:
            if not self._is_worker():
                self.oracle.save()
            _write_json(self._get_tuner_fname(), self.get_state())

    return {
        "kt": kt,
        "oracles": {
            "random": RandomOracle,
            "hyperband": HyperbandOracle,
            "bayesian": BayesianOracle,
        },
        "HyperModel": ForecastHyperModel,
        "Tuner": ForecastTuner,
        "Fatal": FatalForecasterError,
    }


def trial_callbacks(patience: int) -> list[Any]:
    """The recipe of `forecaster train`: early stopping, and halving the step on a plateau."""
    import keras

    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor=OBJECTIVE, patience=patience, restore_best_weights=True
        )
    ]
    if patience >= 4:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=OBJECTIVE, factor=0.5, patience=patience // 2, min_lr=1e-5
            )
        )
    return callbacks


def _write_json(path: str, state: Any) -> None:
    write_text_atomic(Path(path), json.dumps(state))


# --- the search -------------------------------------------------------------------------------


class _Search:
    """One sub-search per cell, run here, served to workers (chief), or worked on (worker)."""

    def __init__(
        self,
        *,
        out: Path,
        data: TuningData,
        space: SearchSpace,
        config: TuneConfig,
        season: int,
        distributed: Distributed | None,
        progress: SearchProgress,
    ) -> None:
        self.out, self.data, self.space, self.config = out, data, space, config
        self.season, self.distributed, self.progress = season, distributed, progress
        self.role = distributed.role if distributed is not None else "local"
        self.tuners: dict[str, Any] = {}
        self.servers: list[Any] = []

    def tuner(self, cell: str) -> Any:
        """Build (or reload from the output directory) one cell's tuner."""
        classes = _kt_classes()
        kt = classes["kt"]
        hp = kt.HyperParameters()
        declare(hp, self.space, cell)
        # Keras Tuner replaces a seed of 0 with a random one.
        seed = oracle_seed(self.config.seed)
        common = {
            "objective": kt.Objective(OBJECTIVE, direction="min"),
            "seed": seed,
            "hyperparameters": hp,
            "allow_new_entries": False,
        }
        trials = self.config.trials_per_cell
        if self.config.tuner == "hyperband":
            oracle = classes["oracles"]["hyperband"](
                max_epochs=self.config.max_epochs, factor=self.config.hyperband_factor, **common
            )
            oracle.max_trials = trials  # Hyperband has no cap of its own
        elif self.config.tuner == "bayesian":
            oracle = classes["oracles"]["bayesian"](
                max_trials=trials, num_initial_points=max(3, (trials or 10) // 3), **common
            )
        else:
            oracle = classes["oracles"]["random"](max_trials=trials, **common)
        oracle.cell = cell
        oracle.verbose = 0  # the chief never calls search(verbose=0); progress is ours
        # Keras Tuner prints "Reloading Tuner from ..." on stdout, which is for results.
        with contextlib.redirect_stdout(io.StringIO()):
            tuner = classes["Tuner"](
                oracle=oracle,
                hypermodel=classes["HyperModel"](self, cell),
                directory=str(self.out / TUNER_DIR),
                project_name=cell,
                overwrite=False,  # never wipe: workers and resumes share the directory
            )
        tuner.cell = cell
        return tuner

    def deadline(self, index: int) -> float | None:
        """Cell i may start trials until (i + 1) / cells of the budget is spent."""
        if self.config.search_budget is None:
            return None
        share = self.config.search_budget * (index + 1) / len(self.space.cells)
        return self.progress.start + share

    def run(self) -> None:
        """Run the search in this process's role."""
        if importlib.util.find_spec("tensorboard") is None:
            # keras-tuner imports tensorboard in every trial.
            raise TuningError(
                "keras-tuner needs tensorboard, which is not installed; install the training "
                "extra: pip install 'forecaster[train]'"
            )
        if self.role == "worker":
            self._run_worker()
        elif self.role == "chief":
            self._run_chief()
        else:
            self._run_local()

    def _run_local(self) -> None:
        from forecaster.tune.distributed import environment

        with environment(None, 0):
            for cell in self.space.cells:
                self.tuners[cell] = self.tuner(cell)
                self.progress.resumed(cell, list(self.tuners[cell].oracle.trials.values()))
            self.progress.restart_clock()
            for index, cell in enumerate(self.space.cells):
                tuner = self.tuners[cell]
                tuner.progress = self.progress
                tuner.oracle.deadline = self.deadline(index)
                self._search(tuner, cell)

    def _run_chief(self) -> None:
        from forecaster.tune.distributed import (
            OracleServer,
            environment,
            serve_until_finished,
        )

        assert self.distributed is not None
        with environment(self.distributed, 0):
            for cell in self.space.cells:
                self.tuners[cell] = self.tuner(cell)
                self.progress.resumed(cell, list(self.tuners[cell].oracle.trials.values()))
            self.progress.restart_clock()
            for index, cell in enumerate(self.space.cells):
                oracle = self.tuners[cell].oracle
                oracle.deadline = self.deadline(index)
                oracle.progress = self.progress
                self.tuners[cell].save()
                self.servers.append(OracleServer(oracle, self.distributed, index))
            try:
                serve_until_finished(self.servers)
            except KeyboardInterrupt:
                self.close()
                raise self._interrupted() from None
        self._check_failures()

    def _run_worker(self) -> None:
        import grpc

        from forecaster.tune.distributed import (
            environment,
            rpc_error,
            set_call_timeout,
            wait_for_oracle,
        )

        assert self.distributed is not None
        set_call_timeout(self.distributed.timeout)
        for index, cell in enumerate(self.space.cells):
            with environment(self.distributed, index):
                wait_for_oracle(self.distributed, index, cell)
                tuner = self.tuner(cell)
                tuner.progress = self.progress
                _pace_idle(tuner)
                try:
                    self._search(tuner, cell)
                except grpc.RpcError as exc:
                    raise rpc_error(exc, self.distributed, index) from None

    def _search(self, tuner: Any, cell: str) -> None:
        try:
            tuner.search(verbose=0)
        except KeyboardInterrupt:
            raise self._interrupted() from None
        except _Fatal as exc:
            cause = exc.args[0] if exc.args and isinstance(exc.args[0], ForecasterError) else exc
            raise cause from None
        except RuntimeError as exc:
            if "consecutive failures" not in str(exc):
                raise
            last = [line for line in str(exc).splitlines() if line.strip()][-1]
            raise TuningError(
                f"{cell.upper()} trials failed {tuner.oracle.max_consecutive_failed_trials} times "
                f"in a row; the last error: {last.strip()}"
            ) from None

    def _interrupted(self) -> TuningError:
        return TuningError(
            f"search interrupted after {self.progress.done} finished trial(s); rerun the same "
            "command with --resume to continue (finished trials are kept)"
        )

    def _check_failures(self) -> None:
        failed = {
            cell: [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
            for cell, tuner in self.tuners.items()
        }
        for cell, trials in failed.items():
            if trials and not any(
                t.status == "COMPLETED" for t in self.tuners[cell].oracle.trials.values()
            ):
                last = (trials[-1].message or "").strip().splitlines()
                raise TuningError(
                    f"every {cell.upper()} trial failed; the last error: "
                    f"{last[-1] if last else 'unknown'}"
                )

    def best_trials(self) -> dict[str, Any]:
        """The best completed trial of each cell; an error names why a cell has none."""
        best: dict[str, Any] = {}
        for cell, tuner in self.tuners.items():
            completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
            if completed:
                best[cell] = min(completed, key=lambda t: (t.score, t.trial_id))
                continue
            if tuner.oracle.budget_spent and self.config.time_budget is not None:
                took = [s for durations in self.progress.durations.values() for s in durations]
                longest = max((s for s in took if math.isfinite(s)), default=0.0)
                budget = format_duration(self.config.time_budget)
                if not longest:
                    raise TuningError(
                        f"--time-budget {budget} ran out before any {cell.upper()} trial ran; "
                        "pass a budget long enough to train a few models, such as 10m"
                    )
                search_share = 1 - self.config.retrain_share
                needed = format_duration(longest * len(self.space.cells) * 1.2 / search_share)
                raise TuningError(
                    f"--time-budget {budget} ran out before any {cell.upper()} trial ran (a "
                    f"trial took {longest:.1f} s); pass at least --time-budget {needed}, or "
                    "fewer --cells. Finished trials are kept: rerun with --resume"
                )
            self._check_failures()
            raise TuningError(
                f"no {cell.upper()} trial finished; rerun with --resume or a larger --max-trials"
            )
        return best

    def close(self) -> None:
        """Stop serving (chief)."""
        for server in self.servers:
            server.stop()
        self.servers = []


def _pace_idle(tuner: Any) -> None:
    """A Hyperband worker waiting for a bracket asks again at once; make it wait a little."""
    create = tuner.oracle.create_trial

    def create_trial(tuner_id: str) -> Any:
        trial = create(tuner_id)
        if trial.status == "IDLE":
            time.sleep(0.5)
        return trial

    tuner.oracle.create_trial = create_trial


# --- the job ----------------------------------------------------------------------------------


@dataclass
class TuneOutcome:
    """What `tune` produced."""

    out: Path
    role: str
    space: SearchSpace
    trials: dict[str, int]  # finished trials per cell
    best: dict[str, tuple[float, dict[str, Any]]]  # cell -> best trial's val loss and values
    results: list[CellResult]  # retrained best model per cell; empty on a worker
    winner: str | None
    reason: str
    budget_spent: bool
    seconds: float  # wall time of the search (without retraining)
    report: dict[str, Any] = field(default_factory=dict)


def tune(
    file: str | Path,
    data_config: DataConfig,
    *,
    split: SplitConfig | None = None,
    horizon: int = 12,
    season: int | None = None,
    space: SpaceOverrides | None = None,
    config: TuneConfig | None = None,
    out: Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    distributed: Distributed | None = None,
    on_status: StatusCallback | None = None,
) -> TuneOutcome:
    """Search GRU and LSTM hyperparameters on a CSV, retrain the best of each, and compare them.

    Writes OUT/search.json, OUT/tuner/<cell>/ (Keras Tuner's files), OUT/winner/ and
    OUT/runner_up/ (normal run directories) and OUT/comparison.{json,md,png}. A worker only runs
    trials for the chief and returns without retraining.
    """
    from forecaster.data.load import load_csv
    from forecaster.evaluation.baselines import infer_season
    from forecaster.model.windows import split_rows

    file = Path(file)
    split = split or SplitConfig()
    config = config or TuneConfig()
    overrides = space or SpaceOverrides()
    if not data_config.targets:
        raise ConfigError("no target column chosen; pass --target COLUMN")
    if horizon < 1:
        raise ConfigError(f"--horizon must be at least 1 step, not {horizon}")
    role = distributed.role if distributed is not None else "local"
    out = check_out(out, file, resume=resume, overwrite=overwrite, role=role)
    if distributed is not None and role == "worker":
        from forecaster.tune.distributed import wait_for_oracle

        # Before loading TensorFlow: an unreachable chief is reported within the timeout.
        wait_for_oracle(distributed, 0, (overrides.cells or CELLS)[0])

    data = load_csv(file, data_config)
    season = season or infer_season(data.freq)
    rows = split_rows(data.n_rows, split)
    resolved = resolve_space(data, rows, horizon, season, overrides)
    identity = search_identity(file, data, data_config, split, horizon, season, resolved, config)
    tuning_data = prepare_tuning_data(data, rows, horizon, max(resolved.windows))
    if role == "worker":
        check_worker_identity(out, identity)
    else:
        open_out(out, identity, resume=resume, overwrite=overwrite)

    per_cell = config.trials_per_cell
    if config.tuner == "hyperband":
        planned = hyperband_trials(config.max_epochs, config.hyperband_factor)
        per_cell = min(planned, per_cell) if per_cell else planned
    progress = SearchProgress(
        role=role,
        tuner=config.tuner,
        total=None if role == "worker" or per_cell is None else per_cell * len(resolved.cells),
        budget=config.time_budget,
        on_status=on_status,
    )
    search = _Search(
        out=out,
        data=tuning_data,
        space=resolved,
        config=config,
        season=season,
        distributed=distributed,
        progress=progress,
    )
    try:
        with _quiet_retracing():
            search.run()
            if role != "worker":
                return _finish(search, file, data_config, split, progress.elapsed)
        return TuneOutcome(
            out=out,
            role=role,
            space=resolved,
            trials=dict(progress.finished),
            best=dict(progress.best),
            results=[],
            winner=None,
            reason="this worker's trials are done; the chief retrains and compares",
            budget_spent=False,
            seconds=progress.elapsed,
        )
    finally:
        search.close()


@contextlib.contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Each trial builds a new model, so TensorFlow's "excessive retracing" warning always fires."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def _finish(
    search: _Search, file: Path, data_config: DataConfig, split: SplitConfig, seconds: float
) -> TuneOutcome:
    """Retrain the best of each cell, pick the winner, write the comparison."""
    config, progress = search.config, search.progress
    best = search.best_trials()
    budget_spent = any(t.oracle.budget_spent for t in search.tuners.values())
    results = _retrain_and_measure(
        search, file, data_config, split, best, on_epoch=progress.retrain_epoch
    )
    winner, reason = choose_winner(results, config.prefer_smaller_within)
    _place_runs(search.out, results, winner)
    finished = {
        cell: sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        for cell, tuner in search.tuners.items()
    }
    report = comparison_json(
        results,
        winner,
        reason,
        {
            "tuner": config.tuner,
            "seed": config.seed,
            "max_epochs": config.max_epochs,
            "max_trials_per_cell": config.trials_per_cell,
            "time_budget_seconds": config.time_budget,
            "retrain_share": config.retrain_share,
            "budget_spent": budget_spent,
            "prefer_smaller_within": config.prefer_smaller_within,
            "loss": config.loss,
            "trials": finished,
            "space": search.space.to_json(),
            "search_seconds": round(seconds, 2),
            "validation_origins": len(search.data.val_origins),
        },
    )
    write_comparison(search.out, report)
    progress.set_phase("done", winner, reason)
    return TuneOutcome(
        out=search.out,
        role=search.role,
        space=search.space,
        trials=finished,
        best={
            cell: (float(t.score), clean_values(t.hyperparameters.values))
            for cell, t in best.items()
        },
        results=results,
        winner=winner,
        reason=reason,
        budget_spent=budget_spent,
        seconds=seconds,
        report=report,
    )


def _retrain_and_measure(
    search: _Search,
    file: Path,
    data_config: DataConfig,
    split: SplitConfig,
    best: dict[str, Any],
    *,
    on_epoch: Callable[[int, int, dict[str, float]], None],
) -> list[CellResult]:
    """Retrain each cell's best trial with `forecaster.runs.train.train` and measure it."""
    from forecaster.runs.train import train

    config, data = search.config, search.data
    budget = config.retrain_budget
    ends = None if budget is None else time.monotonic() + budget
    results = []
    for index, (cell, trial) in enumerate(best.items()):
        # Each cell gets an equal share of what is left, so a quick first one leaves more.
        limit = None if ends is None else max(1.0, (ends - time.monotonic()) / (len(best) - index))
        values = clean_values(trial.hyperparameters.values)
        window = int(values["window"])
        search.progress.set_phase(
            "retrain", cell, f"retraining the best {cell.upper()}: {describe(values)}"
        )
        # Go on from the trial's best epoch rather than start again: a budgeted search has
        # no time to repeat it. A worker on another machine may have kept it to itself.
        checkpoint = Path(search.tuners[cell]._get_checkpoint_fname(trial.trial_id))
        outcome = train(
            file,
            data_config,
            split=split,
            window=WindowConfig(window, data.horizon),
            model=model_config(values, search.season, config.loss),
            training=TrainConfig(
                epochs=config.final_epochs or config.max_epochs,
                batch_size=config.batch_size,
                patience=config.patience,
                seed=trial_seed(config.seed, values),
                time_limit=limit,
            ),
            season=search.season,
            out=search.out / f".best-{cell}",
            overwrite=True,
            on_epoch=on_epoch,
            initial_weights=checkpoint if checkpoint.exists() else None,
        )
        result = outcome.result
        val = data.val(window)
        val_loss = float(
            result.model.evaluate(val.x, val.y, batch_size=1024, verbose=0, return_dict=True)[
                "loss"
            ]
        )
        scores = outcome.evaluation.scores["model"]
        seconds = result.epoch_seconds
        results.append(
            CellResult(
                cell=cell,
                run_dir=f".best-{cell}",
                hyperparameters=values,
                trial_id=str(trial.trial_id),
                trials=sum(
                    t.status == "COMPLETED" for t in search.tuners[cell].oracle.trials.values()
                ),
                search_val_loss=float(trial.score),
                val_loss=val_loss,
                params=result.params,
                test={k: float(scores[k]) for k in ("mae", "rmse", "mase")},
                test_skill={
                    b: float(outcome.evaluation.skill(b))
                    for b in ("naive", "seasonal_naive", "holt_winters")
                },
                seconds_per_epoch=float(np.median(seconds)) if seconds else 0.0,
                epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                seconds_to_best=float(sum(seconds[: result.best_epoch])),
                keras_ms_per_window=keras_latency(result.model, data.test(window).x),
            )
        )
    return results


def keras_latency(model: keras.Model, x: np.ndarray, calls: int = 20) -> dict[str, float]:
    """Milliseconds per window with Keras: one window per call (median), and all in one batch."""
    one = x[:1]
    for _ in range(3):
        model.predict_on_batch(one)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        model.predict_on_batch(one)
        times.append(time.perf_counter() - started)
    model.predict(x, batch_size=1024, verbose=0)
    started = time.perf_counter()
    model.predict(x, batch_size=1024, verbose=0)
    batched = (time.perf_counter() - started) / max(len(x), 1)
    return {"batch1": float(np.median(times)) * 1000, "batched": batched * 1000}


def _place_runs(out: Path, results: list[CellResult], winner: str) -> None:
    """Move the retrained runs to OUT/winner and OUT/runner_up."""
    for name in (WINNER_DIR, RUNNER_UP_DIR):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for result in results:
        name = WINNER_DIR if result.cell == winner else RUNNER_UP_DIR
        (out / result.run_dir).rename(out / name)
        result.run_dir = name
