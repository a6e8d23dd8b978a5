"""What the sections share: the run context, the synthetic series, trained runs and bundles.

Every section uses the same generated series (forecaster.data.synthetic.make_series: three channels,
hourly, target `temp`), windowed by forecaster itself: 48-step windows of 3 channels, 12 steps
ahead. Runs and bundles are made with forecaster's own `train` and `export` and cached in the
run's work directory, so a later section (in another process) finds them.
"""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.settings import Settings

if TYPE_CHECKING:
    import keras

    from forecaster.model.fit import EpochCallback
    from forecaster.model.windows import Prepared
    from forecaster.runs.train import RunOutcome

TARGET = "temp"
WINDOW, HORIZON = 48, 12
UNITS = 64
SEED = 0


@dataclass(frozen=True)
class Context:
    """A section's settings, the shared work directory and the run's deadline (time.time())."""

    settings: Settings
    work: Path
    deadline: float

    @property
    def quick(self) -> bool:
        """A quick run."""
        return self.settings.name == "quick"

    def remaining(self) -> float:
        """Seconds left before the whole run should be done."""
        return self.deadline - time.time()

    def log(self, message: str) -> None:
        """Progress on stderr (the orchestrator shows it)."""
        print(f"    {message}", file=sys.stderr, flush=True)


def rows_for(train_windows: int) -> int:
    """The fewest rows whose training part holds `train_windows` windows."""
    from forecaster.config import SplitConfig
    from forecaster.model.windows import split_rows

    span = WINDOW + HORIZON
    rows = int((train_windows + span - 1) / SplitConfig().train)
    while True:
        start, stop = split_rows(rows, SplitConfig()).train
        if stop - start - span + 1 >= train_windows:
            return rows
        rows += 1


def series_csv(ctx: Context) -> Path:
    """The synthetic sensor CSV every training section uses (written once per run)."""
    from forecaster.data.synthetic import make_series, write_csv

    path = ctx.work / "series.csv"
    if not path.exists():
        rows = rows_for(ctx.settings.train_windows)
        tmp = path.with_suffix(".tmp")
        write_csv(make_series(rows=rows, seed=SEED), tmp)
        tmp.replace(path)
    return path


def data_config() -> Any:
    """Read the series with `temp` as the target and every channel as input."""
    from forecaster.config import DataConfig

    return DataConfig(targets=(TARGET,))


def prepared(ctx: Context) -> Prepared:
    """The series split, scaled and windowed by forecaster (numpy sliding windows)."""
    from forecaster.config import SplitConfig, WindowConfig
    from forecaster.data.load import load_csv
    from forecaster.model.windows import prepare

    data = load_csv(series_csv(ctx), data_config())
    return prepare(data, SplitConfig(), WindowConfig(WINDOW, HORIZON))


def model_config(cell: str) -> Any:
    """forecaster's default recipe at 64 units, one layer."""
    from forecaster.config import ModelConfig

    return ModelConfig(cell=cell, units=UNITS)  # type: ignore[arg-type]


def product_model(data: Prepared, cell: str, *, unroll: bool = False) -> keras.Model:
    """The model `forecaster train` builds for these windows, compiled the same way."""
    from forecaster.model.build import build_model

    train = data.windows["train"]
    kwargs: dict[str, Any] = {
        "window": data.window.window,
        "n_features": train.x.shape[2],
        "horizon": data.window.horizon,
        "n_targets": train.y.shape[2],
        "unroll": unroll,
    }
    # Newer recipes take where the targets and sensors are; pass them when the builder asks.
    accepted = inspect.signature(build_model).parameters
    if "target_index" in accepted:
        kwargs["target_index"] = data.data.target_index
    if "sensor_channels" in accepted:
        kwargs["sensor_channels"] = len(data.data.features)
    return build_model(model_config(cell), **kwargs)


def train_config(ctx: Context) -> Any:
    """Training to convergence: forecaster's early stopping, capped for the time budget."""
    from forecaster.config import TrainConfig

    return TrainConfig(
        epochs=ctx.settings.converge_epochs,
        patience=ctx.settings.converge_patience,
        seed=SEED,
    )


def run_dir(ctx: Context, cell: str) -> Path:
    """Where the trained run of a cell lives."""
    return ctx.work / "runs" / cell


def train_run(ctx: Context, cell: str, on_epoch: EpochCallback | None = None) -> RunOutcome:
    """`forecaster train` on the series: one run directory per cell."""
    from forecaster.runs.train import train

    return train(
        series_csv(ctx),
        data_config(),
        model=model_config(cell),
        training=train_config(ctx),
        out=run_dir(ctx, cell),
        overwrite=True,
        on_epoch=on_epoch,
    )


def ensure_run(ctx: Context, cell: str) -> Path:
    """The cell's run directory, trained now if the training section has not made it."""
    directory = run_dir(ctx, cell)
    if not (directory / "model.keras").exists():
        ctx.log(f"training {cell.upper()}({UNITS}) (no run from the training section)")
        train_run(ctx, cell)
    return directory


def bundle_dir(ctx: Context, cell: str) -> Path:
    """Where the exported bundle of a cell lives."""
    return ctx.work / "bundles" / cell


def ensure_bundle(ctx: Context, cell: str) -> Path:
    """The cell's exported bundle (`forecaster export --quantize all`), made now if missing."""
    from forecaster.export.ship import export

    directory = bundle_dir(ctx, cell)
    if not (directory / "bundle.json").exists():
        ctx.log(f"exporting {cell.upper()}({UNITS}) (no bundle from the export section)")
        export(ensure_run(ctx, cell), quantize="all", out=directory, overwrite=True)
    return directory
