"""Reading a run directory back: its data options, window, training data and Keras model."""

from __future__ import annotations

import dataclasses
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecaster import __version__
from forecaster.bundle import Bundle
from forecaster.config import DataConfig, SplitConfig, WindowConfig
from forecaster.errors import BundleError, ConfigError, DataError
from forecaster.files import sha256_of
from forecaster.layout import DEFAULT_MODELS_DIR, KERAS_MODEL, TRAINING_FILE

if TYPE_CHECKING:
    import keras

    from forecaster.data.fleet import Fleet
    from forecaster.data.load import SensorData
    from forecaster.model.pooled import PooledPrepared
    from forecaster.model.windows import Prepared


def default_run_dir(file: Path, cell: str, root: Path = DEFAULT_MODELS_DIR) -> Path:
    """`models/<file stem>-<cell>-<UTC time>`: unique per second, sortable by time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return root / f"{file.stem}-{cell}-{stamp}"


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing directory unless asked to."""
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it or choose --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; choose another --out")


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
        id_col=bundle.fleet.id_col if bundle.fleet is not None else None,
    )


def bundle_window(bundle: Bundle) -> WindowConfig:
    """The window a run was trained with."""
    spec = bundle.data
    return WindowConfig(
        bundle.model.window,
        bundle.model.horizon,
        bool(spec.calendar),
        bool(spec.lags),
        series_ids=bundle.fleet is not None and bundle.fleet.id_inputs,
    )


def training_file(run_dir: Path, bundle: Bundle) -> Path:
    """Where a run's training CSV is on this machine, as recorded beside the run."""
    record = run_dir / TRAINING_FILE
    if record.exists():
        try:
            return Path(json.loads(record.read_text(encoding="utf-8"))["path"])
        except (ValueError, KeyError, TypeError):
            raise BundleError(
                f"{record} is corrupt; retrain the run, or evaluate on the CSV with: "
                "forecaster evaluate RUN_DIR FILE"
            ) from None
    # Runs written before the path left bundle.json kept it there.
    return Path(bundle.data.source)


def load_training_fleet(
    bundle: Bundle, fleet: Fleet | None = None, *, run_dir: Path | None = None
) -> PooledPrepared:
    """A fleet run's series, split, scaled and windowed exactly as in training (the series it
    trained on, in its order)."""
    from forecaster.data.fleet import load_fleet
    from forecaster.model.pooled import prepare_pooled

    spec = bundle.data
    if bundle.fleet is None:
        raise BundleError("this run was trained on one series, not a fleet")
    if fleet is None:
        source = training_file(run_dir, bundle) if run_dir is not None else Path(spec.source)
        _check_unchanged(source, spec.source_sha256)
        fleet = load_fleet(source, bundle_data_config(bundle))
    trained = set(bundle.fleet.ids)
    order = {series_id: i for i, series_id in enumerate(bundle.fleet.ids)}
    kept = sorted((d for d in fleet if d.series in trained), key=lambda d: order[d.series or ""])
    fleet = dataclasses.replace(fleet, series=tuple(kept), skipped=())
    seasonal = {s.id: s.seasonal for s in bundle.fleet.series if s.seasonal is not None}
    pooled = prepare_pooled(
        fleet, SplitConfig(*spec.split), bundle_window(bundle), spec.lags, seasonal or None
    )
    if pooled.ids != bundle.fleet.ids:
        raise DataError(
            f"{fleet.path} no longer gives the series this run was trained on; retrain it"
        )
    return pooled


def _check_unchanged(source: Path, sha256: str) -> None:
    if not source.exists() or sha256_of(source) != sha256:
        raise DataError(
            f"the training file {source} is missing or changed since training; restore it, "
            "or evaluate on another CSV with: forecaster evaluate RUN_DIR FILE"
        )


def load_training_data(
    bundle: Bundle, data: SensorData | None = None, *, run_dir: Path | None = None
) -> Prepared:
    """A run's training data, split and windowed exactly as in training.

    `data` is the training file already loaded with the run's options (a job loads it once for
    all its stages); without it the file the run in `run_dir` was trained on is read again, and
    refused if it changed.
    """
    from forecaster.data.load import load_csv
    from forecaster.model.windows import prepare

    spec = bundle.data
    if data is None:
        source = training_file(run_dir, bundle) if run_dir is not None else Path(spec.source)
        _check_unchanged(source, spec.source_sha256)
        data = load_csv(source, bundle_data_config(bundle))
    return prepare(data, SplitConfig(*spec.split), bundle_window(bundle), spec.seasonal, spec.lags)


def load_keras_model(run_dir: Path) -> keras.Model:
    """Load a run's Keras model in safe mode (no code in the file is run)."""
    import keras

    from forecaster.model.build import custom_layers

    custom_layers()  # registers forecaster's layers for safe-mode loading
    path = run_dir / KERAS_MODEL
    if not path.exists():
        raise BundleError(
            f"{run_dir} has no {KERAS_MODEL}; pass a run directory written by `forecaster train`"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged zip or config
        raise BundleError(f"{path} cannot be loaded ({exc}); retrain to recreate it") from None
