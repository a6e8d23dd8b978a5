"""The jobs that chain the stages: train a run directory, evaluate it. Heavy imports stay inside."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster import __version__
from forecaster.bundle import Bundle, DataSpec, ModelSpec, TrainingSpec
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.errors import BundleError, ConfigError, DataError
from forecaster.files import sha256_of, staged_dir, write_text_atomic

if TYPE_CHECKING:
    import keras

    from forecaster.data.load import SensorData
    from forecaster.evaluation.rolling import Evaluation
    from forecaster.model.fit import EpochCallback, TrainResult
    from forecaster.model.windows import Prepared

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
DEFAULT_MODELS_DIR = Path("models")


@dataclass
class RunOutcome:
    """What `train` produced: the run directory, its bundle, the training and the evaluation."""

    run_dir: Path
    bundle: Bundle
    result: TrainResult
    evaluation: Evaluation


def default_run_dir(file: Path, cell: str, root: Path = DEFAULT_MODELS_DIR) -> Path:
    """`models/<file stem>-<cell>-<UTC time>`: unique per second, sortable by time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return root / f"{file.stem}-{cell}-{stamp}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a trained model's numbers."""
    import keras
    import tensorflow as tf

    return {
        "forecaster": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing directory unless asked to."""
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it or choose --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; choose another --out")


def train(
    file: str | Path,
    data_config: DataConfig,
    *,
    split: SplitConfig | None = None,
    window: WindowConfig | None = None,
    model: ModelConfig | None = None,
    training: TrainConfig | None = None,
    season: int | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
    initial_weights: Path | None = None,
) -> RunOutcome:
    """Train one model on a CSV, evaluate it on the test part, and write a run directory.

    `initial_weights` continues from a saved training of the same model (a tuning trial's).
    """
    from forecaster.data.inspect import describe_freq, position_label
    from forecaster.data.load import load_csv
    from forecaster.evaluation.baselines import fit_holt_winters, infer_season
    from forecaster.evaluation.metrics import seasonal_naive_scale
    from forecaster.model.fit import train_model
    from forecaster.model.windows import prepare

    file = Path(file)
    split = split or SplitConfig()
    window = window or WindowConfig()
    model = model or ModelConfig()
    training = training or TrainConfig()
    if not data_config.targets:
        raise ConfigError("no target column chosen; pass --target COLUMN")
    out = out or default_run_dir(file, model.cell)
    check_out_dir(out, overwrite=overwrite)

    data = load_csv(file, data_config)
    prepared = prepare(data, split, window)
    season = season or infer_season(data.freq)
    model = dataclasses.replace(model, season=season)
    result = train_model(prepared, model, training, on_epoch, initial_weights)

    train_rows = slice(*prepared.split.train)
    train_targets = data.frame[list(data.targets)].to_numpy(np.float64)[train_rows]
    mase_scale = seasonal_naive_scale(train_targets, season)
    hw_params = [fit_holt_winters(train_targets[:, i], season) for i in range(len(data.targets))]
    evaluation = _evaluate_part(
        result.model, data, prepared.scaler, prepared.windows["test"], season, mase_scale, hw_params
    )
    bundle = Bundle(
        data=DataSpec(
            source=str(file.resolve()),
            source_sha256=sha256_of(file),
            time_col=data.time_col,
            features=data.features,
            targets=data.targets,
            step_seconds=data.freq.total_seconds() if data.freq is not None else None,
            freq=describe_freq(data.freq),
            max_gap=data_config.max_gap,
            dedupe=data_config.dedupe,
            bad_rows=data_config.bad_rows,
            split=(split.train, split.val, split.test),
            train_start=position_label(data, prepared.split.train[0]),
            train_end=position_label(data, prepared.split.train[1] - 1),
            season=season,
            mase_scale=tuple(float(v) for v in mase_scale),
            calendar=prepared.calendar,
        ),
        scaler=prepared.scaler,
        model=ModelSpec(
            **dataclasses.asdict(model),
            window=window.window,
            horizon=window.horizon,
            params=result.params,
        ),
        training=TrainingSpec(
            **dataclasses.asdict(training),
            epochs_run=result.epochs_run,
            best_epoch=result.best_epoch,
            best_val_loss=result.best_val_loss,
            seconds=round(result.seconds, 3),
            seconds_per_epoch=round(float(np.median(result.epoch_seconds)), 4)
            if result.epoch_seconds
            else 0.0,
            interrupted=result.interrupted,
            initial_weights=str(initial_weights) if initial_weights else None,
        ),
        baselines={"holt_winters": hw_params},
        metrics={"test": evaluation.to_json()},
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        result.model.save(stage / MODEL_FILE)
        bundle.save(stage)
        write_text_atomic(stage / HISTORY_FILE, _history_csv(result.history))
        _write_evaluation(stage, evaluation, data, suffix="")
        from forecaster.report.plots import plot_history

        plot_history(result.history, result.best_epoch, stage / "loss.png", model.loss)
    return RunOutcome(out, bundle, result, evaluation)


def evaluate(
    run_dir: str | Path, file: str | Path | None = None, *, season: int | None = None
) -> tuple[Bundle, Evaluation]:
    """Rolling-origin evaluation of a run on its test part, or on every window of `file`."""
    from forecaster.data.load import load_csv
    from forecaster.model.windows import make_windows, model_inputs

    run_dir = Path(run_dir)
    bundle = Bundle.load(run_dir)
    keras_model = load_keras_model(run_dir)
    spec = bundle.data
    window = bundle_window(bundle)
    if file is None:
        prepared = load_training_data(bundle)
        data, windows = prepared.data, prepared.windows["test"]
        suffix = ""
    else:
        file = Path(file)
        _check_columns(file, bundle)
        data = load_csv(file, bundle_data_config(bundle))
        scaled = model_inputs(data, bundle.scaler, spec.calendar)
        windows = make_windows(scaled, data.segments, (0, data.n_rows), window, data.target_index)
        if len(windows) == 0:
            raise DataError(
                f"{file} has no stretch of {window.span} consecutive complete rows (window "
                f"{window.window} + horizon {window.horizon}); pass a longer file"
            )
        suffix = f"_{file.stem}"
    season = season or spec.season
    evaluation = _evaluate_part(
        keras_model,
        data,
        bundle.scaler,
        windows,
        season,
        np.asarray(spec.mase_scale),
        bundle.baselines.get("holt_winters", []),
    )
    _write_evaluation(run_dir, evaluation, data, suffix=suffix)
    return bundle, evaluation


def bundle_data_config(bundle: Bundle) -> DataConfig:
    """The data options a run was trained with, to read other files the same way."""
    spec = bundle.data
    return DataConfig(
        targets=spec.targets,
        features=spec.features,
        time_col=spec.time_col,
        dedupe=spec.dedupe,  # type: ignore[arg-type]  # written from a validated DataConfig
        max_gap=spec.max_gap,
        bad_rows=spec.bad_rows,  # type: ignore[arg-type]
    )


def load_training_data(bundle: Bundle) -> Prepared:
    """Reload a run's training file, split and windowed exactly as in training."""
    from forecaster.data.load import load_csv
    from forecaster.model.windows import prepare

    spec = bundle.data
    source = Path(spec.source)
    if not source.exists() or sha256_of(source) != spec.source_sha256:
        raise DataError(
            f"the training file {source} is missing or changed since training; restore it, "
            "or evaluate on another CSV with: forecaster evaluate RUN_DIR FILE"
        )
    data = load_csv(source, bundle_data_config(bundle))
    return prepare(data, SplitConfig(*spec.split), bundle_window(bundle))


def bundle_window(bundle: Bundle) -> WindowConfig:
    """The window a run was trained with."""
    return WindowConfig(bundle.model.window, bundle.model.horizon, bool(bundle.data.calendar))


def load_keras_model(run_dir: Path) -> keras.Model:
    """Load a run's Keras model in safe mode (no code in the file is run)."""
    import keras

    from forecaster.model.build import custom_layers

    custom_layers()  # registers forecaster's layers for safe-mode loading
    path = run_dir / MODEL_FILE
    if not path.exists():
        raise BundleError(
            f"{run_dir} has no {MODEL_FILE}; pass a run directory written by `forecaster train`"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged zip or config
        raise BundleError(f"{path} cannot be loaded ({exc}); retrain to recreate it") from None


def _check_columns(file: Path, bundle: Bundle) -> None:
    if not file.exists():
        raise DataError(f"{file} does not exist; check the path")
    with file.open(encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    names = {h.strip() for h in header}
    missing = [c for c in bundle.data.features if c not in names]
    if missing:
        raise DataError(
            f"{file} lacks column(s) {', '.join(missing)} that the model was trained on "
            f"(inputs: {', '.join(bundle.data.features)}); pass a CSV with those columns"
        )


def _evaluate_part(
    keras_model: keras.Model,
    data: SensorData,
    scaler: Any,
    windows: Any,
    season: int,
    mase_scale: np.ndarray,
    hw_params: list[dict[str, Any]],
) -> Evaluation:
    from forecaster.data.inspect import position_label
    from forecaster.evaluation.rolling import evaluate_forecasts

    scaled_pred = keras_model.predict(windows.x, batch_size=1024, verbose=0)
    forecast = scaler.inverse(scaled_pred, data.targets)
    series = data.frame[list(data.targets)].to_numpy(np.float64)
    return evaluate_forecasts(
        series,
        windows.origins,
        forecast,
        targets=data.targets,
        labels=[position_label(data, int(o)) for o in windows.origins],
        season=season,
        mase_scale=mase_scale,
        hw_params=hw_params,
    )


def _write_evaluation(
    directory: Path, evaluation: Evaluation, data: SensorData, suffix: str
) -> None:
    from forecaster.report.plots import plot_error_by_step, plot_forecasts

    write_text_atomic(
        directory / f"metrics{suffix}.json", json.dumps(evaluation.to_json(), indent=2) + "\n"
    )
    series = data.frame[list(data.targets)].to_numpy(np.float64)
    plot_forecasts(evaluation, series, directory / f"forecast{suffix}.png")
    plot_error_by_step(evaluation, directory / f"error_by_step{suffix}.png")


def _history_csv(history: dict[str, list[float]]) -> str:
    buffer = io.StringIO()
    keys = list(history)
    writer = csv.writer(buffer)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    return buffer.getvalue()
