"""The Keras Tuner search over GRU/LSTM forecasters: one sub-search per cell, in any role.

The search is Keras Tuner's, with these repairs:

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
import math
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.errors import ForecasterError
from forecaster.files import write_text_atomic
from forecaster.tune.config import (
    Distributed,
    SearchSpace,
    TuneConfig,
    TuningError,
    format_duration,
)
from forecaster.tune.data import TuningData
from forecaster.tune.directory import TUNER_DIR
from forecaster.tune.hyperparameters import declare, model_config, oracle_seed, trial_seed
from forecaster.tune.progress import SearchProgress

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

        def __init__(self, search: Search, cell: str) -> None:
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


class Search:
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
            if trials and not self.completed(cell):
                last = (trials[-1].message or "").strip().splitlines()
                raise TuningError(
                    f"every {cell.upper()} trial failed; the last error: "
                    f"{last[-1] if last else 'unknown'}"
                )

    def completed(self, cell: str) -> int:
        """How many of the cell's trials completed."""
        return sum(t.status == "COMPLETED" for t in self.tuners[cell].oracle.trials.values())

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
