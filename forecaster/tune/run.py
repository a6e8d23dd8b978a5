"""`tune`: load the data, search each cell, retrain the best of each, and write the comparison.

One sub-search per cell (the cell fixed, the same seed, so both cells see the same draws of every
other hyperparameter), the best model of each cell retrained with `forecaster.runs.train.train` (a
normal run directory), and the GRU-vs-LSTM comparison. The search itself is Keras Tuner's, with
the repairs listed in `forecaster.tune.keras_tuner`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.config import CELLS, DataConfig, SplitConfig
from forecaster.errors import ConfigError
from forecaster.tune.comparison import CellResult, Comparison, choose_winner
from forecaster.tune.config import Distributed, TuneConfig
from forecaster.tune.data import decomposition_inputs, prepare_tuning_data
from forecaster.tune.directory import check_out, check_worker_identity, open_out, search_identity
from forecaster.tune.hyperparameters import clean_values, hyperband_trials, resolve_space
from forecaster.tune.progress import SearchProgress, StatusCallback
from forecaster.tune.retrain import place_runs, retrain_and_measure
from forecaster.tune.search import Search
from forecaster.tune.space import SearchSpace, SpaceOverrides

if TYPE_CHECKING:
    from forecaster.data.fleet import Fleet
    from forecaster.data.load import SensorData
    from forecaster.runs.fleet import FleetBaselines
    from forecaster.tune.data import SearchData


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
    comparison: Comparison | None = None  # None on a worker


def tune(
    source: str | Path | SensorData | Fleet,
    data_config: DataConfig | None = None,
    *,
    split: SplitConfig | None = None,
    horizon: int = 12,
    seasons: tuple[int, ...] | None = None,
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
    trials for the chief and returns without retraining. `source` is a CSV read with
    `data_config`, or data already loaded by `load_csv` (read once, used by every retraining),
    or a fleet loaded by `load_fleet`: one global model is searched for all its series.
    """
    from forecaster.data.fleet import Fleet, load_fleet
    from forecaster.data.load import SensorData, load_csv
    from forecaster.data.seasons import kept_seasons, training_seasons
    from forecaster.model.windows import split_rows

    if isinstance(source, SensorData | Fleet):
        data_config = source.config
    elif data_config is None:
        raise ConfigError("tune needs a DataConfig with the target column(s) to read a CSV")
    file = source.path if isinstance(source, SensorData | Fleet) else Path(source)
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

    fleet: Fleet | None = None
    baselines: FleetBaselines | None = None
    if isinstance(source, Fleet):
        fleet = source
    elif data_config.id_col is not None and not isinstance(source, SensorData):
        fleet = load_fleet(file, data_config)
    tuning_data: SearchData
    if fleet is not None:
        from forecaster.data.fleet import Skipped
        from forecaster.runs.fleet import (
            FLEET_WINDOWS_PER_EPOCH,
            fit_fleet_baselines,
            fleet_seasonal,
            fleet_seasons,
        )
        from forecaster.tune.data import prepare_pooled_tuning_data

        # The space must suit the fleet's typical series; shorter ones are skipped.
        data = sorted(fleet.series, key=lambda d: d.n_rows)[len(fleet) // 2]
        rows = split_rows(data.n_rows, split)
        seasons = seasons or fleet_seasons(fleet, split)
        resolved = resolve_space(data, rows, horizon, seasons[0], overrides)
        fleet = _fitting_series(fleet, split, horizon, resolved)
        decomposition = "decomposition" in resolved.residual
        if role != "worker" or decomposition:
            # Fitted once before the search, for both cells' retraining (and the decomposition
            # reference's profiles); the search gets what is left of the budget.
            started = time.monotonic()
            baselines = fit_fleet_baselines(fleet, split, seasons)
            if role != "worker":
                config = config.after(time.monotonic() - started)
        profiles = None
        if decomposition:
            assert baselines is not None
            fleet = (
                fleet.without([Skipped(k, why) for k, why in baselines.failed.items()])
                if baselines.failed
                else fleet
            )
            profiles = fleet_seasonal(baselines.fitted, horizon)
        tuning_data = prepare_pooled_tuning_data(
            fleet.series,
            horizon,
            max(resolved.windows),
            split,
            seasons if config.lags else (),
            FLEET_WINDOWS_PER_EPOCH,
            config.seed,
            profiles,
            config.series_ids,
        )
    else:
        data = source if isinstance(source, SensorData) else load_csv(file, data_config)
        rows = split_rows(data.n_rows, split)
        seasons = seasons or kept_seasons(training_seasons(data, rows.train))
        resolved = resolve_space(data, rows, horizon, seasons[0], overrides)
        seasonal = None
        if "decomposition" in resolved.residual:
            seasonal = decomposition_inputs(data, rows, seasons, horizon)
        tuning_data = prepare_tuning_data(
            data, rows, horizon, max(resolved.windows), seasonal, seasons if config.lags else ()
        )
    season = seasons[0]
    identity = search_identity(file, data, data_config, split, horizon, seasons, resolved, config)
    if role == "worker":
        check_worker_identity(out, identity)
    else:
        open_out(out, identity, resume=resume, overwrite=overwrite)

    per_cell = planned_trials(config)
    progress = SearchProgress(
        role=role,
        tuner=config.tuner,
        total=None if role == "worker" or per_cell is None else per_cell * len(resolved.cells),
        budget=config.time_budget,
        on_status=on_status,
    )
    search = Search(
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
                return _finish(search, fleet or data, split, seasons, progress.elapsed, baselines)
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


def _fitting_series(fleet: Fleet, split: SplitConfig, horizon: int, space: SearchSpace) -> Fleet:
    """The fleet without the series too short for the longest window searched (left out of
    the search and of the retraining, and listed as skipped)."""
    from forecaster.data.fleet import Skipped
    from forecaster.errors import DataError
    from forecaster.model.windows import split_rows
    from forecaster.tune.data import check_windows_fit

    skipped = []
    for data in fleet:
        try:
            check_windows_fit(space, data, split_rows(data.n_rows, split), horizon)
        except DataError as exc:
            skipped.append(Skipped(data.series or "", str(exc)))
    return fleet.without(skipped) if skipped else fleet


def planned_trials(config: TuneConfig) -> int | None:
    """Trials per cell the progress counts towards; None when there is no such goal.

    Hyperband's whole schedule (90 trials a cell at 30 epochs) is the plan only without a budget:
    under one, a user sees trials done and time left, not '1/180' when about 20 will fit.
    """
    if config.tuner != "hyperband":
        return config.trials_per_cell
    if config.max_trials is not None:
        return min(config.max_trials, hyperband_trials(config.max_epochs, config.hyperband_factor))
    if config.time_budget is not None:
        return None
    return hyperband_trials(config.max_epochs, config.hyperband_factor)


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
    search: Search,
    data: SensorData | Fleet,
    split: SplitConfig,
    seasons: tuple[int, ...],
    seconds: float,
    baselines: FleetBaselines | None,
) -> TuneOutcome:
    """Retrain the best of each cell, pick the winner, write the comparison."""
    config, progress = search.config, search.progress
    best = search.best_trials()
    budget_spent = any(t.oracle.budget_spent for t in search.tuners.values())
    results = retrain_and_measure(
        search, data, split, seasons, best, on_epoch=progress.retrain_epoch, baselines=baselines
    )
    winner, reason = choose_winner(results, config.prefer_smaller_within)
    place_runs(search.out, results, winner)
    finished = {cell: search.completed(cell) for cell in search.tuners}
    comparison = Comparison.of(
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
    comparison.write(search.out)
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
        comparison=comparison,
    )
