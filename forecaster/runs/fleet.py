"""Training one global model on a fleet of series: `forecaster train --id-col COLUMN`.

Each series keeps its own scaler, baselines, MASE scale and intervals; the model's weights are
shared. Every series is scored on its own test part beside its own baselines, as a one-series
run would be, so the fleet's figures are the distribution of those per-series scores.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecaster.bundle import Bundle, DataSpec, FleetSpec, ModelSpec, SeasonalInputs, SeriesSpec
from forecaster.config import DEFAULT_ADAPT, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.data.fleet import Fleet, Skipped
from forecaster.errors import ConfigError, DataError
from forecaster.evaluation.fleet import FleetEvaluation
from forecaster.files import sha256_of, staged_dir, write_text_atomic
from forecaster.layout import HISTORY, KERAS_MODEL, LOSS_PNG, TRAINING_FILE
from forecaster.runs.load import check_out_dir, default_run_dir, library_versions
from forecaster.runs.train import ScoredBaselines, fit_baselines, history_csv, training_spec
from forecaster.scaling import MinMaxParams

if TYPE_CHECKING:
    import keras

    from forecaster.data.load import SensorData
    from forecaster.evaluation.rolling import Evaluation, FittedBaselines
    from forecaster.model.fit import EpochCallback, TrainResult
    from forecaster.model.pooled import PooledPrepared

# Series whose seasons are looked for; series of one kind share them, and the search costs ~1 s
# a series.
SEASON_SAMPLE = 12
# Windows per epoch when a fleet has more: an epoch of 1,000 series costs what one of a few does.
FLEET_WINDOWS_PER_EPOCH = 20_000


@dataclass
class FleetRunOutcome:
    """A fleet run: its directory, bundle, training, and one evaluation per series."""

    run_dir: Path
    bundle: Bundle
    result: TrainResult
    evaluations: dict[str, Evaluation]
    figures: FleetEvaluation  # the per-series scores' spread, wins, worst series
    skipped: tuple[Skipped, ...] = ()
    warnings: list[str] = field(default_factory=list)


def fleet_seasons(fleet: Fleet, split: SplitConfig, sample: int = SEASON_SAMPLE) -> tuple[int, ...]:
    """The seasons most of an evenly spaced sample of the series show on their training parts."""
    from forecaster.data.seasons import kept_seasons, training_seasons
    from forecaster.model.windows import split_rows

    picks = np.unique(np.linspace(0, len(fleet) - 1, min(sample, len(fleet))).astype(int))
    found = Counter(
        kept_seasons(training_seasons(data, split_rows(data.n_rows, split).train))
        for data in (fleet.series[i] for i in picks)
    )
    return found.most_common(1)[0][0]


@dataclass(frozen=True)
class FleetBaselines:
    """Every series' baselines fitted on its training part with the fleet's seasons; a series
    they could not be fitted on, with why."""

    seasons: tuple[int, ...]
    fitted: dict[str, FittedBaselines]
    failed: dict[str, str] = field(default_factory=dict)


def fit_fleet_baselines(
    fleet: Fleet, split: SplitConfig, seasons: tuple[int, ...], *, workers: int | None = None
) -> FleetBaselines:
    """Fit every series' baselines on its training part, spread over `workers` processes
    (default: every usable core)."""
    from forecaster.cpus import usable_cpus
    from forecaster.evaluation.fit_many import fit_many
    from forecaster.model.windows import split_rows

    columns = list(fleet.targets)
    inputs = [
        d.frame[columns].to_numpy(np.float64)[slice(*split_rows(d.n_rows, split).train)]
        for d in fleet
    ]
    fitted, failed = {}, {}
    for series_id, outcome in zip(
        fleet.ids, fit_many(inputs, seasons, workers or usable_cpus()), strict=True
    ):
        if isinstance(outcome, str):
            failed[series_id] = outcome
        else:
            fitted[series_id] = outcome
    return FleetBaselines(seasons, fitted, failed)


def check_fleet_baselines(
    fleet: Fleet, split: SplitConfig, window: WindowConfig, baselines: FleetBaselines
) -> tuple[dict[str, ScoredBaselines], list[Skipped]]:
    """Each series' baselines checked against its test windows; those that cannot score one
    origin (or could not be fitted) are skipped, with the reason."""
    from forecaster.model.windows import split_rows

    scored: dict[str, ScoredBaselines] = {}
    skipped: list[Skipped] = []
    for data in fleet:
        series_id = data.series or ""
        if series_id in baselines.failed:
            skipped.append(Skipped(series_id, baselines.failed[series_id]))
            continue
        try:
            scored[series_id] = fit_baselines(
                data,
                split_rows(data.n_rows, split),
                window,
                baselines.seasons,
                baselines.fitted[series_id],
            )
        except DataError as exc:
            skipped.append(Skipped(series_id, str(exc)))
    return scored, skipped


def fleet_seasonal(fitted: dict[str, FittedBaselines], horizon: int) -> dict[str, SeasonalInputs]:
    """Each series' decomposition reference: its own seasonal profiles (its decomposition
    baseline's), and one smoothing for the whole fleet, the median of the series' own (per
    target: level, trend, damping), since the model holds the smoothing in its weights."""
    from forecaster.evaluation.decomposition import seasonal_inputs

    own = {key: seasonal_inputs(f.decomposition, horizon) for key, f in fitted.items()}
    first = next(iter(own.values()))
    shared = tuple(
        tuple(float(v) for v in np.median([inputs.smoothing[t] for inputs in own.values()], 0))
        for t in range(first.n_targets)
    )
    return {key: dataclasses.replace(inputs, smoothing=shared) for key, inputs in own.items()}


def train_fleet(
    fleet: Fleet,
    *,
    split: SplitConfig | None = None,
    window: WindowConfig | None = None,
    model: ModelConfig | None = None,
    training: TrainConfig | None = None,
    seasons: tuple[int, ...] | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
    initial_weights: Path | None = None,
    baselines: FleetBaselines | None = None,
) -> FleetRunOutcome:
    """Train one model on the windows of every series of `fleet` and score it per series.

    A series too short for the baselines or for one window per part is skipped and listed.
    `window` defaults to one with the series' ids as inputs, `training.windows_per_epoch` to
    FLEET_WINDOWS_PER_EPOCH. `baselines`: every series' baselines already fitted with `seasons`
    (by `fit_fleet_baselines`).
    """
    from forecaster.data.lags import lag_seasons
    from forecaster.model.fit import train_model
    from forecaster.model.pooled import prepare_pooled
    from forecaster.model.windows import check_timestamps

    split = split or SplitConfig()
    window = window or WindowConfig(series_ids=True)
    model = model or ModelConfig()
    training = training or TrainConfig(windows_per_epoch=FLEET_WINDOWS_PER_EPOCH)
    if not fleet.targets:
        raise ConfigError("no target column chosen; pass --target COLUMN")
    out = out or default_run_dir(fleet.path, model.cell)
    check_out_dir(out, overwrite=overwrite)

    seasons = seasons or fleet_seasons(fleet, split)
    if baselines is None:
        baselines = fit_fleet_baselines(fleet, split, seasons)
    scored, skipped = check_fleet_baselines(fleet, split, window, baselines)
    fleet = fleet.without(skipped) if skipped else fleet
    model = dataclasses.replace(model, season=seasons[0])
    lags = lag_seasons(seasons, window.window, window.horizon) if window.lags else ()
    seasonal = None
    if model.residual == "decomposition":
        for data in fleet:
            check_timestamps(data)
        seasonal = fleet_seasonal({k: v.fitted for k, v in scored.items()}, window.horizon)
    pooled = prepare_pooled(fleet, split, window, lags, seasonal)
    result = train_model(pooled, model, training, on_epoch, initial_weights)

    evaluations, members = score_series(result.model, pooled, scored)
    figures = FleetEvaluation.from_series(list(evaluations), list(evaluations.values()))
    bundle = _fleet_bundle(
        fleet, pooled, members, seasons, split, model, window, result.params
    ).replace(
        training=training_spec(training, result, initial_weights),
        metrics={
            "fleet": {
                "series": len(members),
                "skipped": len(pooled.skipped),
                "model_median_mase": figures.model.median,
                "best_baseline_median_mase": figures.best_baseline.median,
                "wins": figures.wins,
                "ties": figures.ties,
                "losses": figures.losses,
                "verdict": figures.verdict(),
            }
        },
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        result.model.save(stage / KERAS_MODEL)
        bundle.save(stage)
        record = {"path": str(fleet.path.resolve()), "id_col": fleet.id_col}
        write_text_atomic(stage / TRAINING_FILE, json.dumps(record, indent=2) + "\n")
        write_text_atomic(stage / HISTORY, history_csv(result.history))
        from forecaster.report.fleet import write_fleet_report
        from forecaster.report.plots import plot_history

        plot_history(result.history, result.best_epoch, stage / LOSS_PNG, model.loss)
        write_fleet_report(stage, figures)
    warnings = [w for s in scored.values() for w in s.warnings]
    return FleetRunOutcome(out, bundle, result, evaluations, figures, pooled.skipped, warnings)


def score_series(
    keras_model: keras.Model, pooled: PooledPrepared, scored: dict[str, ScoredBaselines]
) -> tuple[dict[str, Evaluation], list[SeriesSpec]]:
    """Each series' evaluation on its test part and its intervals from its validation part.

    The model runs once over every series' windows; only the scoring is per series.
    """
    from forecaster.data.inspect import position_label
    from forecaster.intervals import calibrate
    from forecaster.runs.evaluate import evaluate_windows

    val_pred = keras_model.predict(pooled.windows["val"].x, batch_size=4096, verbose=0)
    test_pred = keras_model.predict(pooled.windows["test"].x, batch_size=4096, verbose=0)
    evaluations: dict[str, Evaluation] = {}
    members: list[SeriesSpec] = []
    for i, (series_id, prepared) in enumerate(zip(pooled.ids, pooled.members, strict=True)):
        data, scaler = prepared.data, prepared.scaler
        val, test = prepared.windows["val"], prepared.windows["test"]
        intervals = calibrate(
            scaler.inverse(val_pred[pooled.series_index["val"] == i], data.targets),
            scaler.inverse(val.y, data.targets),
            first_origin=position_label(data, int(val.origins[0])),
            last_origin=position_label(data, int(val.origins[-1])),
            source="the Keras model on this series' validation part",
        )
        baselines = scored[series_id]
        evaluations[series_id] = evaluate_windows(
            keras_model,
            data,
            scaler,
            test,
            baselines.fitted,
            baselines.mase_scale,
            intervals=intervals,
            calibration=val,
            scaled_forecast=test_pred[pooled.series_index["test"] == i],
            adapt=DEFAULT_ADAPT,
            scaled_calibration_forecast=val_pred[pooled.series_index["val"] == i],
        )
        members.append(
            SeriesSpec(
                id=series_id,
                scaler=scaler,
                train_start=position_label(data, prepared.split.train[0]),
                train_end=position_label(data, prepared.split.train[1] - 1),
                mase_scale=tuple(float(v) for v in baselines.mase_scale),
                rows=data.n_rows,
                intervals=intervals,
                seasonal=prepared.seasonal,
            )
        )
    return evaluations, members


def _fleet_bundle(
    fleet: Fleet,
    pooled: PooledPrepared,
    members: list[SeriesSpec],
    seasons: tuple[int, ...],
    split: SplitConfig,
    model: ModelConfig,
    window: WindowConfig,
    params: int,
) -> Bundle:
    """The bundle of a fleet run; each series' own numbers are in `fleet`, and `data` holds
    what they share (the training span is the fleet's earliest to latest)."""
    from forecaster.data.inspect import describe_freq

    first: SensorData = pooled.data
    config = fleet.config
    return Bundle(
        data=DataSpec(
            source=fleet.path.name,
            source_sha256=sha256_of(fleet.path),
            time_col=first.time_col,
            features=first.features,
            targets=first.targets,
            step_seconds=first.freq.total_seconds() if first.freq is not None else None,
            freq=describe_freq(first.freq),
            max_gap=config.max_gap,
            dedupe=config.dedupe,
            bad_rows=config.bad_rows,
            split=(split.train, split.val, split.test),
            train_start=min(m.train_start for m in members),
            train_end=max(m.train_end for m in members),
            season=seasons[0],
            mase_scale=tuple(
                float(np.median([m.mase_scale[t] for m in members]))
                for t in range(len(first.targets))
            ),
            calendar=pooled.calendar,
            seasons=seasons,
            lags=pooled.lags,
        ),
        scaler=_pooled_range([m.scaler for m in members]),
        model=ModelSpec(
            **dataclasses.asdict(model),
            window=window.window,
            horizon=window.horizon,
            params=params,
        ),
        fleet=FleetSpec(
            id_col=fleet.id_col,
            series=tuple(members),
            skipped=tuple((s.id, s.reason) for s in pooled.skipped),
            id_inputs=window.series_ids,
        ),
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _pooled_range(scalers: list[MinMaxParams]) -> MinMaxParams:
    """One min-max scaler over every series' training range: the range the fleet was trained
    on, for the record (each series is scaled with its own)."""
    low = np.min([s.data_min for s in scalers], axis=0)
    high = np.max([s.data_max for s in scalers], axis=0)
    span = np.where(high > low, high - low, 1.0)
    return MinMaxParams(
        columns=scalers[0].columns,
        data_min=tuple(float(v) for v in low),
        data_max=tuple(float(v) for v in high),
        scale=tuple(float(v) for v in 1.0 / span),
        min=tuple(float(v) for v in -low / span),
    )


def evaluate_fleet(run_dir: Path) -> FleetEvaluation:
    """Score a fleet run's model again on every series' test part, beside its baselines (refitted
    on the same training parts), and rewrite its fleet figures."""
    from forecaster.bundle import Bundle
    from forecaster.report.fleet import write_fleet_report
    from forecaster.runs.load import bundle_window, load_keras_model, load_training_fleet

    bundle = Bundle.load(run_dir)
    if bundle.fleet is None:
        raise ConfigError(f"{run_dir} holds a model of one series; evaluate it without a fleet")
    pooled = load_training_fleet(bundle, run_dir=run_dir)
    spec = bundle.data
    split = SplitConfig(*spec.split)
    first = pooled.members[0].data
    fleet = Fleet(
        first.path, bundle.fleet.id_col, tuple(m.data for m in pooled.members), first.config
    )
    baselines = fit_fleet_baselines(fleet, split, spec.seasons or (spec.season,))
    scored, _ = check_fleet_baselines(fleet, split, bundle_window(bundle), baselines)
    evaluations, _ = score_series(load_keras_model(run_dir), pooled, scored)
    figures = FleetEvaluation.from_series(list(evaluations), list(evaluations.values()))
    write_fleet_report(run_dir, figures)
    return figures
