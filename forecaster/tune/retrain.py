"""Retraining each cell's best trial as a normal run, measuring it, and placing the runs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecaster.config import SplitConfig, TrainConfig, WindowConfig
from forecaster.tune.comparison import CellResult
from forecaster.tune.directory import RUNNER_UP_DIR, WINNER_DIR
from forecaster.tune.hyperparameters import clean_values, describe, model_config, trial_seed

if TYPE_CHECKING:
    import keras
    from keras_tuner.src.engine.trial import Trial

    from forecaster.data.fleet import Fleet
    from forecaster.data.load import SensorData
    from forecaster.runs.fleet import FleetBaselines, FleetRunOutcome
    from forecaster.tune.search import Search


def retrain_and_measure(
    search: Search,
    data: SensorData | Fleet,
    split: SplitConfig,
    seasons: tuple[int, ...],
    best: dict[str, Trial],
    *,
    on_epoch: Callable[[int, int, dict[str, float]], None],
    baselines: FleetBaselines | None = None,
) -> list[CellResult]:
    """Retrain each cell's best trial with `forecaster.runs.train.train` (a fleet's with
    `train_fleet`, reusing its fitted `baselines`) and measure it."""
    from forecaster.data.fleet import Fleet
    from forecaster.runs.fleet import FLEET_WINDOWS_PER_EPOCH, train_fleet
    from forecaster.runs.train import train

    config, windows = search.config, search.data
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
        training = TrainConfig(
            epochs=config.final_epochs or config.max_epochs,
            batch_size=config.batch_size,
            patience=config.patience,
            seed=trial_seed(config.seed, values),
            time_limit=limit,
            windows_per_epoch=FLEET_WINDOWS_PER_EPOCH if isinstance(data, Fleet) else None,
        )
        window_config = WindowConfig(
            window,
            windows.horizon,
            lags=bool(windows.seasons),
            series_ids=config.series_ids and isinstance(data, Fleet),
        )
        model = model_config(values, search.season, config.loss)
        out = search.out / f".best-{cell}"
        start = checkpoint if checkpoint.exists() else None
        if isinstance(data, Fleet):
            fleet_outcome = train_fleet(
                data,
                split=split,
                window=window_config,
                model=model,
                training=training,
                seasons=seasons,
                out=out,
                overwrite=True,
                on_epoch=on_epoch,
                initial_weights=start,
                baselines=baselines,
            )
            result = fleet_outcome.result
            test, skill = fleet_scores(fleet_outcome)
        else:
            outcome = train(
                data,
                split=split,
                window=window_config,
                model=model,
                training=training,
                seasons=seasons,
                out=out,
                overwrite=True,
                on_epoch=on_epoch,
                initial_weights=start,
            )
            result = outcome.result
            scores = outcome.evaluation.scores["model"]
            test = {k: float(scores[k]) for k in ("mae", "rmse", "mase")}
            skill = {b: float(outcome.evaluation.skill(b)) for b in outcome.evaluation.baselines}
        residual = str(values.get("residual", "none"))
        val = windows.val(window, residual)
        val_loss = float(
            result.model.evaluate(val.x, val.y, batch_size=1024, verbose=0, return_dict=True)[
                "loss"
            ]
        )
        seconds = result.epoch_seconds
        results.append(
            CellResult(
                cell=cell,
                run_dir=f".best-{cell}",
                hyperparameters=values,
                trial_id=str(trial.trial_id),
                trials=search.completed(cell),
                search_val_loss=float(trial.score),
                val_loss=val_loss,
                params=result.params,
                test=test,
                test_skill=skill,
                seconds_per_epoch=float(np.median(seconds)) if seconds else 0.0,
                epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                seconds_to_best=float(sum(seconds[: result.best_epoch])),
                keras_ms_per_window=keras_latency(result.model, windows.test(window, residual).x),
            )
        )
    return results


def fleet_scores(outcome: FleetRunOutcome) -> tuple[dict[str, float], dict[str, float]]:
    """A fleet's test scores for the comparison: the median over its series of each one's MAE,
    RMSE and MASE, and the model's median MASE over each baseline's."""
    figures = outcome.figures
    scores = [e.scores["model"] for e in outcome.evaluations.values()]
    test = {k: float(np.median([s[k] for s in scores])) for k in ("mae", "rmse", "mase")}
    skill = {
        b: figures.model.median / figures.spreads[b].median
        for b in figures.methods
        if b != "model" and figures.spreads[b].series and figures.spreads[b].median > 0
    }
    return test, skill


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


def place_runs(out: Path, results: list[CellResult], winner: str) -> None:
    """Move the retrained runs to OUT/winner and OUT/runner_up."""
    for name in (WINNER_DIR, RUNNER_UP_DIR):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for result in results:
        name = WINNER_DIR if result.cell == winner else RUNNER_UP_DIR
        (out / result.run_dir).rename(out / name)
        result.run_dir = name
