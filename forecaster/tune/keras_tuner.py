"""Keras Tuner's oracles, hypermodel and tuner with forecaster's repairs; import it lazily.

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

This is the one module of the package that imports keras and keras_tuner at its top.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
from keras_tuner.src import errors as kt_errors
from keras_tuner.src.engine.hyperparameters import Float
from keras_tuner.src.engine.trial import Trial, TrialStatus

from forecaster.config import Loss
from forecaster.errors import ForecasterError
from forecaster.files import write_text_atomic
from forecaster.model.build import build_model
from forecaster.model.fit import deadline_callback, seed_everything
from forecaster.tune.config import TunerName
from forecaster.tune.data import SearchData
from forecaster.tune.hyperparameters import declare, model_config, oracle_seed, trial_seed
from forecaster.tune.progress import SearchProgress
from forecaster.tune.space import SearchSpace

OBJECTIVE = "val_loss"


class FatalForecasterError(kt_errors.FatalError):
    """Stops the search with a ForecasterError: Keras Tuner re-raises FatalError subclasses and
    records any other error as a failed trial."""

    def __init__(self, error: ForecasterError) -> None:
        super().__init__(error)
        self.error = error


class ForecastOracle(kt.Oracle):
    """Atomic saves, a deadline for new trials, and progress events on the chief.

    Listed before a Keras Tuner oracle in a subclass's bases, so its methods wrap that oracle's.
    """

    cell: str = ""
    deadline: float | None = None
    budget_spent: bool = False
    progress: SearchProgress | None = None

    @kt.synchronized
    def create_trial(self, tuner_id: str) -> Trial:
        deadline = self.deadline
        if (
            deadline is not None
            and time.monotonic() >= deadline
            and tuner_id not in self.ongoing_trials
        ):
            self.budget_spent = True
            self.tuner_ids.discard(tuner_id)
            return Trial(self.get_space(), status=TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING and self.progress is not None:
            self.progress.trial_started(self.cell, trial.trial_id, trial.hyperparameters.values)
        return trial

    def _random_values(self) -> dict[str, Any] | None:
        # The first trial is `forecaster train`'s recipe (the hyperparameters' defaults): a
        # short search then always weighs a model known to train well. The draws after it
        # are the ones a search without it would make.
        if not self._tried_so_far:
            return dict(self.hyperparameters.values)
        values: dict[str, Any] | None = super()._random_values()
        return values

    @kt.synchronized
    def end_trial(self, trial: Trial) -> None:
        super().end_trial(trial)
        if self.progress is not None:
            ended = self.trials[trial.trial_id]
            if ended.status in ("COMPLETED", "FAILED"):
                self.progress.trial_ended(
                    self.cell,
                    ended.trial_id,
                    ended.hyperparameters.values,
                    ended.status,
                    ended.score,
                )

    def save(self) -> None:
        _write_json(self._get_oracle_fname(), self.get_state())

    def reload(self) -> None:
        # Keras Tuner writes trial.json, then oracle.json; a kill between the two leaves:
        super().reload()
        for trial_id in [t for t in self.trials if t not in self.start_order]:
            # a trial file the oracle never recorded: it is created again, same id and values;
            del self.trials[trial_id]
        for trial_id in list(self._retry_queue):
            # or a trial that finished but was still "ongoing" in oracle.json: keep its result.
            if self.trials[trial_id].status in ("COMPLETED", "FAILED"):
                self._retry_queue.remove(trial_id)
                self._run_times[trial_id] += 1
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)

    def _save_trial(self, trial: Trial) -> None:
        path = Path(self._get_trial_dir(trial.trial_id)) / "trial.json"
        _write_json(str(path), trial.get_state())


class RandomOracle(ForecastOracle, kt.oracles.RandomSearchOracle):
    """Random search with the repairs."""


class HyperbandOracle(ForecastOracle, kt.oracles.HyperbandOracle):
    """Hyperband with the repairs; the starting point trains for max_epochs."""

    def _random_trial(self, trial_id: str, bracket: dict[str, Any]) -> dict[str, Any]:
        # The starting point trains for max_epochs, as the other tuners train every trial:
        # a first round of two epochs ranks slow starters low (bench/tuning.md), and a
        # budget too short for the first bracket would judge everything there.
        first = not self._tried_so_far
        response: dict[str, Any] = super()._random_trial(trial_id, bracket)
        if first and response["status"] == "RUNNING":
            response["values"]["tuner/epochs"] = self.max_epochs
        return response


class BayesianOracle(ForecastOracle, kt.oracles.BayesianOptimizationOracle):
    """Bayesian optimisation with the repairs, and proposals that survive a resume."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        # Keras Tuner keeps the restarts' RandomState in memory only, so a resumed search
        # started it over and re-proposed a trial it had already run. Derive it from the
        # seed and the number of trials instead: the same proposals with or without a resume.
        self._random_state = np.random.RandomState(
            (self.seed * 1_000_003 + len(self.trials)) % 2**32
        )
        response: dict[str, Any] = super().populate_space(trial_id)
        if response["status"] != "RUNNING" or not response.get("values"):
            return response
        values = self._rounded(response["values"])
        if self._duplicate(values):
            # The Gaussian process proposed a tried point (keras-team/keras-tuner#227).
            drawn = self._random_values()
            if drawn is None:
                return {"status": "STOPPED", "values": None}
            values = self._rounded(drawn)
        return {"status": "RUNNING", "values": values}

    def _rounded(self, values: dict[str, Any]) -> dict[str, Any]:
        # The optimiser's last bits vary with BLAS threading, and the trial seed hashes the
        # values: round continuous ones to 3 significant digits to keep trials stable.
        values = dict(values)
        for hp in self.hyperparameters.space:
            if isinstance(hp, Float) and hp.step is None and hp.name in values:
                rounded = float(f"{values[hp.name]:.3g}")
                values[hp.name] = min(max(rounded, hp.min_value), hp.max_value)
        return values


@dataclass(frozen=True)
class TrialSettings:
    """What one cell's trials need: the data, the space, the cell and the training recipe."""

    data: SearchData
    space: SearchSpace
    cell: str
    season: int
    seed: int  # the search's base seed; each trial adds a hash of its values
    loss: Loss
    max_epochs: int
    patience: int
    batch_size: int
    # When the cell stops starting trials; read as each trial starts, since it is set only once
    # every cell's tuner is built (and a worker leaves it to the chief: None).
    deadline: Callable[[], float | None]
    progress: SearchProgress | None  # epoch events of trials run here; None on the chief


class ForecastHyperModel(kt.HyperModel):
    """Builds a forecaster from a trial's values; `fit` windows the data for its window."""

    def __init__(self, settings: TrialSettings) -> None:
        super().__init__(name=f"forecaster_{settings.cell}")
        self.settings = settings

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        settings, data = self.settings, self.settings.data
        values = declare(hp, settings.space, settings.cell)
        seed_everything(trial_seed(settings.seed, hp.values))
        try:
            residual, window = values["residual"], int(values["window"])
            lags = data.lag_channels(window)
            return build_model(
                model_config(values, settings.season, settings.loss),
                window=window,
                n_features=data.n_features(residual, window),
                horizon=data.horizon,
                n_targets=data.n_targets,
                target_index=data.data.target_index,
                sensor_channels=len(data.data.features) + len(lags),
                seasonal=data.seasonal if residual == "decomposition" else None,
                lag_channels=lags,
            )
        except ForecasterError as exc:
            raise FatalForecasterError(exc) from exc

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        settings = self.settings
        window, residual = int(hp.get("window")), str(hp.get("residual"))
        train = settings.data.train(window, residual)
        val = settings.data.val(window, residual)
        epochs = int(kwargs.pop("epochs", settings.max_epochs))
        kwargs.pop("verbose", None)
        callbacks = [*kwargs.pop("callbacks", []), *trial_callbacks(settings.patience)]
        deadline = settings.deadline()
        if deadline is not None:
            # A trial started just before the deadline would otherwise run its whole schedule.
            callbacks.append(deadline_callback(deadline))
        progress = settings.progress
        if progress is not None:
            callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda epoch, logs: progress.epoch_ended(
                        settings.cell, epoch + 1, epochs
                    )
                )
            )
        return model.fit(
            train.x,
            train.y,
            validation_data=(val.x, val.y),
            epochs=epochs,
            batch_size=settings.batch_size,
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

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> Any:
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

    def _build_hypermodel(self, hp: kt.HyperParameters) -> keras.Model:
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

    def on_trial_begin(self, trial: Trial) -> None:
        super().on_trial_begin(trial)
        if self.progress is not None:
            self.progress.trial_started(self.cell, trial.trial_id, trial.hyperparameters.values)

    def on_trial_end(self, trial: Trial) -> None:
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


def make_tuner(
    settings: TrialSettings,
    *,
    tuner: TunerName,
    max_trials: int | None,
    hyperband_factor: int,
    directory: Path,
) -> ForecastTuner:
    """Build (or reload from `directory`) one cell's tuner."""
    hp = kt.HyperParameters()
    declare(hp, settings.space, settings.cell)
    common: dict[str, Any] = {
        "objective": kt.Objective(OBJECTIVE, direction="min"),
        "seed": oracle_seed(settings.seed),
        "hyperparameters": hp,
        "allow_new_entries": False,
    }
    oracle: ForecastOracle
    if tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=settings.max_epochs, factor=hyperband_factor, **common)
        oracle.max_trials = max_trials  # Hyperband has no cap of its own
    elif tuner == "bayesian":
        oracle = BayesianOracle(
            max_trials=max_trials, num_initial_points=max(3, (max_trials or 10) // 3), **common
        )
    else:
        oracle = RandomOracle(max_trials=max_trials, **common)
    oracle.cell = settings.cell
    oracle.verbose = 0  # the chief never calls search(verbose=0); progress is ours
    # Keras Tuner prints "Reloading Tuner from ..." on stdout, which is for results.
    with contextlib.redirect_stdout(io.StringIO()):
        made = ForecastTuner(
            oracle=oracle,
            hypermodel=ForecastHyperModel(settings),
            directory=str(directory),
            project_name=settings.cell,
            overwrite=False,  # never wipe: workers and resumes share the directory
        )
    made.cell = settings.cell
    return made


def trial_callbacks(patience: int) -> list[keras.callbacks.Callback]:
    """The recipe of `forecaster train`: early stopping, and halving the step on a plateau."""
    callbacks: list[keras.callbacks.Callback] = [
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


def _write_json(path: str, state: dict[str, Any]) -> None:
    write_text_atomic(Path(path), json.dumps(state))
