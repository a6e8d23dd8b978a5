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

    from forecaster.data.load import SensorData
    from forecaster.tune.search import Search


def retrain_and_measure(
    search: Search,
    data: SensorData,
    split: SplitConfig,
    seasons: tuple[int, ...],
    best: dict[str, Trial],
    *,
    on_epoch: Callable[[int, int, dict[str, float]], None],
) -> list[CellResult]:
    """Retrain each cell's best trial with `forecaster.runs.train.train` and measure it."""
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
        outcome = train(
            data,
            split=split,
            window=WindowConfig(window, windows.horizon, lags=bool(windows.seasons)),
            model=model_config(values, search.season, config.loss),
            training=TrainConfig(
                epochs=config.final_epochs or config.max_epochs,
                batch_size=config.batch_size,
                patience=config.patience,
                seed=trial_seed(config.seed, values),
                time_limit=limit,
            ),
            seasons=seasons,
            out=search.out / f".best-{cell}",
            overwrite=True,
            on_epoch=on_epoch,
            initial_weights=checkpoint if checkpoint.exists() else None,
        )
        result = outcome.result
        residual = str(values.get("residual", "none"))
        val = windows.val(window, residual)
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
                trials=search.completed(cell),
                search_val_loss=float(trial.score),
                val_loss=val_loss,
                params=result.params,
                test={k: float(scores[k]) for k in ("mae", "rmse", "mase")},
                test_skill={
                    b: float(outcome.evaluation.skill(b)) for b in outcome.evaluation.baselines
                },
                seconds_per_epoch=float(np.median(seconds)) if seconds else 0.0,
                epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                seconds_to_best=float(sum(seconds[: result.best_epoch])),
                keras_ms_per_window=keras_latency(result.model, windows.test(window, residual).x),
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


def place_runs(out: Path, results: list[CellResult], winner: str) -> None:
    """Move the retrained runs to OUT/winner and OUT/runner_up."""
    for name in (WINNER_DIR, RUNNER_UP_DIR):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for result in results:
        name = WINNER_DIR if result.cell == winner else RUNNER_UP_DIR
        (out / result.run_dir).rename(out / name)
        result.run_dir = name
