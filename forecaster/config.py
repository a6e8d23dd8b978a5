"""Frozen, validated settings for loading, splitting and windowing sensor data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from forecaster.errors import ConfigError, UsageError

Dedupe = Literal["error", "mean", "last"]
BadRows = Literal["error", "drop"]
PredictMode = Literal["last", "rolling"]
# Errors per horizon step that rolling prediction recalibrates its intervals from unless told
# otherwise: enough for a 95% rank (19) and a steady 80% quantile, few enough to follow a
# change of season within days of hourly data.
DEFAULT_ADAPT = 100
UnknownPolicy = Literal["error", "skip"]  # predict's answer to a series id a fleet bundle lacks
Quantize = Literal["none", "dynamic", "float16", "int8", "int16", "all"]
Runtime = Literal["litert", "micro"]


@dataclass(frozen=True)
class DataConfig:
    """How to read a sensor CSV: which columns, and what to do with its flaws."""

    targets: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    time_col: str | None = None
    dedupe: Dedupe = "error"
    max_gap: int = 3
    bad_rows: BadRows = "error"
    id_col: str | None = None  # a long file of many series: the column naming each row's series

    def __post_init__(self) -> None:
        if self.dedupe not in ("error", "mean", "last"):
            raise UsageError(f"--dedupe must be error, mean or last, not {self.dedupe!r}")
        if self.bad_rows not in ("error", "drop"):
            raise UsageError(f"--bad-rows must be error or drop, not {self.bad_rows!r}")
        if self.max_gap < 0:
            raise UsageError(f"--max-gap must be 0 or more steps, not {self.max_gap}")
        if len(set(self.targets)) != len(self.targets):
            raise UsageError(f"--target lists a column twice: {', '.join(self.targets)}")


@dataclass(frozen=True)
class SplitConfig:
    """Chronological train / validation / test fractions."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        parts = (self.train, self.val, self.test)
        if any(not 0 < p < 1 for p in parts):
            raise UsageError(
                f"split fractions must each be between 0 and 1, got {self.describe()}; "
                "pass e.g. --split 0.7,0.15,0.15"
            )
        if not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
            raise UsageError(
                f"split fractions must add up to 1, got {self.describe()} "
                f"(sum {sum(parts):g}); pass e.g. --split 0.7,0.15,0.15"
            )

    def describe(self) -> str:
        """The fractions as the user would type them."""
        return f"{self.train:g},{self.val:g},{self.test:g}"

    @classmethod
    def parse(cls, text: str) -> SplitConfig:
        """Read 'train,val,test' fractions such as '0.7,0.15,0.15'."""
        try:
            parts = [float(p) for p in text.split(",")]
        except ValueError:
            parts = []
        if len(parts) != 3:
            raise UsageError(
                f"--split takes three fractions train,val,test such as 0.7,0.15,0.15, not {text!r}"
            )
        return cls(*parts)


@dataclass(frozen=True)
class WindowConfig:
    """How many past steps feed the model and how many future steps it forecasts."""

    window: int = 48
    horizon: int = 12
    calendar: bool = False  # add sin/cos time-of-day, day-of-week, day-of-year input channels
    lags: bool = False  # add the value a season before each step ahead, for seasons past the window
    # A fleet's global model: add the window's series as one-hot input channels (an embedding
    # of the id through the first layer's input weights).
    series_ids: bool = False

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise UsageError(f"--window must be at least 1 step, not {self.window}")
        if self.horizon <= 0:
            raise UsageError(f"--horizon must be at least 1 step, not {self.horizon}")

    @property
    def span(self) -> int:
        """Rows one training example needs: the input window plus the horizon."""
        return self.window + self.horizon


Cell = Literal["gru", "lstm"]
CELLS: tuple[Cell, ...] = ("gru", "lstm")
# What the network's output is added to: nothing, the window's last target value, the
# seasonal-naive forecast taken from the window, the last value plus the change over the same
# steps one season earlier (the forecast of a seasonally differenced random walk), or the
# decomposition baseline run over the window (seasonal profiles from input channels, Holt's
# smoothing of the rest: the ES-RNN recipe).
Residual = Literal["none", "last", "seasonal", "last_seasonal", "decomposition"]
RESIDUALS: tuple[Residual, ...] = ("none", "last", "seasonal", "last_seasonal", "decomposition")
# A per-window statistic subtracted from every input channel before the recurrent layers.
Normalize = Literal["none", "last", "mean"]
# What training minimizes, in scaled units. MAE is what MASE, the headline metric, is made of;
# it also lets rare outliers in the training part (outages, sensor faults) pull the fit less.
Loss = Literal["mae", "mse"]
LOSSES: tuple[Loss, ...] = ("mae", "mse")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and optimiser of a recurrent forecaster; the same for GRU and LSTM."""

    cell: Cell = "gru"
    units: int = 32
    layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    # Measured on the sample weather data (README, "Forecast quality"): forecasting the change
    # from the last value of a window normalized by its last value beat the plain network.
    residual: Residual = "last"
    normalize: Normalize = "last"
    season: int = 1  # steps per season, for residual="seasonal"
    loss: Loss = "mae"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"--loss must be mae or mse, not {self.loss!r}")
        if self.residual not in RESIDUALS:
            raise UsageError(
                f"--residual must be one of {', '.join(RESIDUALS)}, not {self.residual!r}"
            )
        if self.normalize not in ("none", "last", "mean"):
            raise UsageError(f"--normalize must be none, last or mean, not {self.normalize!r}")
        if self.cell not in CELLS:
            raise UsageError(f"--cell must be gru or lstm, not {self.cell!r}")
        if self.units < 1:
            raise UsageError(f"--units must be at least 1, not {self.units}")
        if not 1 <= self.layers <= 4:
            raise UsageError(f"--layers must be between 1 and 4, not {self.layers}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be in [0, 1), not {self.dropout}")
        if self.learning_rate <= 0:
            raise UsageError(f"--lr must be positive, not {self.learning_rate}")


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train: epochs, batch size, early stopping, seed."""

    epochs: int = 100
    batch_size: int = 64
    patience: int = 10
    seed: int = 42
    deterministic: bool = True
    time_limit: float | None = None  # seconds; stops before an epoch that would end later
    # Training windows drawn afresh each epoch (None: all of them), so that an epoch of a large
    # fleet costs the same as one of a single series.
    windows_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.windows_per_epoch is not None and self.windows_per_epoch < 1:
            raise UsageError(
                f"--windows-per-epoch must be at least 1, not {self.windows_per_epoch}"
            )
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"the training time limit must be positive, not {self.time_limit}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.patience < 0:
            raise UsageError(f"--patience must be 0 or more, not {self.patience}")


def parse_fraction(text: str, name: str, *, below: float = 1.0) -> float:
    """'2%' or '0.02' as 0.02, at least 0 and less than `below`."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise UsageError(
            f"{name} takes a percentage such as 2% or a fraction such as 0.02, not {text!r}"
        ) from None
    if not 0 <= value < below:
        raise UsageError(f"{name} must be between 0% and {below:.0%}, not {text!r}")
    return value
