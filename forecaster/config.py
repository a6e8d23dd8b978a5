"""Frozen, validated settings for loading, splitting and windowing sensor data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from forecaster.errors import ConfigError

Dedupe = Literal["error", "mean", "last"]
BadRows = Literal["error", "drop"]


@dataclass(frozen=True)
class DataConfig:
    """How to read a sensor CSV: which columns, and what to do with its flaws."""

    targets: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    time_col: str | None = None
    dedupe: Dedupe = "error"
    max_gap: int = 3
    bad_rows: BadRows = "error"

    def __post_init__(self) -> None:
        if self.dedupe not in ("error", "mean", "last"):
            raise ConfigError(f"--dedupe must be error, mean or last, not {self.dedupe!r}")
        if self.bad_rows not in ("error", "drop"):
            raise ConfigError(f"--bad-rows must be error or drop, not {self.bad_rows!r}")
        if self.max_gap < 0:
            raise ConfigError(f"--max-gap must be 0 or more steps, not {self.max_gap}")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"--target lists a column twice: {', '.join(self.targets)}")


@dataclass(frozen=True)
class SplitConfig:
    """Chronological train / validation / test fractions."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        parts = (self.train, self.val, self.test)
        if any(not 0 < p < 1 for p in parts):
            raise ConfigError(
                f"split fractions must each be between 0 and 1, got {self.describe()}; "
                "pass e.g. --split 0.7,0.15,0.15"
            )
        if not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
            raise ConfigError(
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
            raise ConfigError(
                f"--split takes three fractions train,val,test such as 0.7,0.15,0.15, not {text!r}"
            )
        return cls(*parts)


@dataclass(frozen=True)
class WindowConfig:
    """How many past steps feed the model and how many future steps it forecasts."""

    window: int = 48
    horizon: int = 12

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ConfigError(f"--window must be at least 1 step, not {self.window}")
        if self.horizon <= 0:
            raise ConfigError(f"--horizon must be at least 1 step, not {self.horizon}")

    @property
    def span(self) -> int:
        """Rows one training example needs: the input window plus the horizon."""
        return self.window + self.horizon
