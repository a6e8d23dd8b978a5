"""How a search runs: its budget, tuner, seed and epochs, and Keras Tuner's chief/worker mode.

Nothing here imports Keras or Keras Tuner, so the command line can parse and check every option
before the heavy libraries load.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

from forecaster.config import (
    CELLS,
    LOSSES,
    Loss,
)
from forecaster.errors import ConfigError, ForecasterError, UsageError

TunerName = Literal["hyperband", "bayesian", "random"]
TUNERS: tuple[TunerName, ...] = ("hyperband", "bayesian", "random")
Role = Literal["chief", "worker"]


class TuningError(ForecasterError):
    """A search that cannot start, continue or finish: unreachable chief, budget too small, ..."""


class OptionUsageError(ConfigError):
    """An option used without the one it goes with; the command line reports a usage error."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


DEFAULT_TUNE_BUDGET = "8m"
TUNE_RETRAIN_SHARE = 0.25
# The least a search is worth starting with: a few short trials per cell.
MIN_SEARCH_SECONDS = 60.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str, name: str = "--budget") -> float:
    """Seconds from '90', '90s', '10m', '1h30m' or '2h'."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or _DURATION.sub("", cleaned).strip():
            raise UsageError(
                f"{name} takes a duration such as 90s, 10m or 1h30m, not {text!r}"
            ) from None
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{name} must be a positive duration such as 10m, not {text!r}")
    return seconds


def parse_budget(text: str, name: str = "--budget") -> float | None:
    """Seconds from a duration, or None for 'none' (no limit)."""
    return None if text.strip().lower() == "none" else parse_duration(text, name)


def format_duration(seconds: float) -> str:
    """'42s', '3m05s' or '1h02m'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass(frozen=True)
class Distributed:
    """Keras Tuner's chief/worker mode: one chief serves the oracle, workers run the trials.

    Cell i of the search is served on `port + i`. `timeout` bounds how long a worker waits for
    the chief (at start and for every call) before giving up with an error.
    """

    role: Role
    host: str
    port: int
    timeout: float = 120.0
    tuner_id: str | None = None  # a worker's id; default worker-<host>-<pid>

    def __post_init__(self) -> None:
        if self.role not in ("chief", "worker"):
            raise UsageError(f"--distributed must be chief or worker, not {self.role!r}")
        if not 1 <= self.port <= 65535 - len(CELLS) + 1:
            raise UsageError(f"--oracle port must be between 1 and 65534, not {self.port}")
        if self.timeout <= 0:
            raise UsageError("--oracle-timeout must be positive, such as 2m")

    @classmethod
    def parse(cls, role: str, oracle: str | None, timeout: float = 120.0) -> Distributed:
        """From --distributed ROLE --oracle HOST:PORT."""
        if not oracle:
            raise UsageError(f"--distributed {role} needs --oracle HOST:PORT, the chief's address")
        host, _, port_text = oracle.rpartition(":")
        if not host or not port_text.isdigit():
            raise UsageError(f"--oracle takes HOST:PORT such as 127.0.0.1:8000, not {oracle!r}")
        return cls(cast(Role, role), host.strip("[]"), int(port_text), timeout)

    @classmethod
    def from_options(
        cls, role: str | None, oracle: str | None, timeout: str = "2m"
    ) -> Distributed | None:
        """From --distributed, --oracle and --oracle-timeout; None for a search on this machine."""
        if role is None:
            if oracle is not None:
                raise OptionUsageError(
                    "--oracle needs --distributed chief or worker", option="--oracle"
                )
            return None
        return cls.parse(role, oracle, parse_duration(timeout, "--oracle-timeout"))


@dataclass(frozen=True)
class BudgetReserve:
    """Time a caller keeps from the budget the user gave, for its own stages after the search."""

    share: float  # of the stated budget
    minimum: float  # seconds, whatever the share

    def kept(self, stated: float) -> float:
        """Seconds kept from a stated budget."""
        return max(self.minimum, stated * self.share)

    def stated_for(self, search: float) -> float:
        """The stated budget that leaves `search` seconds once the reserve is kept."""
        return max(search + self.minimum, search / (1 - self.share))


@dataclass(frozen=True)
class TuneConfig:
    """How to search: tuner, trial and epoch limits, time budget, seed, and the winner rule."""

    tuner: TunerName = "hyperband"
    max_trials: int | None = None  # per cell; None: Hyperband's own schedule, 10 for the others
    max_epochs: int = 30
    patience: int = 5
    batch_size: int = 64
    seed: int = 42
    time_budget: float | None = None  # seconds of search and retraining; None for no limit
    retrain_share: float = 0.0  # of time_budget kept for retraining; 0: the budget is the search's
    prefer_smaller_within: float = 0.02
    final_epochs: int | None = None  # epochs to retrain the best models; default max_epochs
    hyperband_factor: int = 3
    loss: Loss = "mae"  # every trial minimizes the same loss, so their scores compare
    # Seasonal-lag channels for the seasons longer than a trial's window (`train --lags`).
    lags: bool = True
    # A fleet: each window's series as one-hot input channels (`train --series-ids`); measured
    # better than without on the fleets of bench/fleet_id.md. Ignored for one series.
    series_ids: bool = True
    # What the caller kept of the user's --budget before time_budget (`forecaster run`'s export
    # and report), so advice on the budget speaks of the option the user typed.
    reserve: BudgetReserve | None = None

    def __post_init__(self) -> None:
        if self.tuner not in TUNERS:
            raise UsageError(f"--tuner must be hyperband, bayesian or random, not {self.tuner!r}")
        if self.max_trials is not None and self.max_trials < 1:
            raise UsageError(f"--max-trials must be at least 1, not {self.max_trials}")
        if self.max_epochs < 1:
            raise UsageError(f"--max-epochs must be at least 1, not {self.max_epochs}")
        if self.patience < 0:
            raise UsageError(f"--patience must be 0 or more, not {self.patience}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError("--time-budget must be positive, such as 10m")
        if not 0 <= self.retrain_share < 1:
            raise ConfigError("the share of the budget kept for retraining must be in [0, 1)")
        if not 0 <= self.prefer_smaller_within < 1:
            raise UsageError("--prefer-smaller-within must be between 0% and 100%")
        if self.final_epochs is not None and self.final_epochs < 1:
            raise UsageError(f"--final-epochs must be at least 1, not {self.final_epochs}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be mae or mse, not {self.loss!r}")
        if self.hyperband_factor < 2:
            raise ConfigError("the Hyperband factor must be at least 2")

    @classmethod
    def within(cls, time_budget: float | None, **settings: Any) -> TuneConfig:
        """Settings for a search and retraining sharing `time_budget` seconds (None: no limit).

        As `forecaster tune` runs it: trials start during the first 3/4 of the budget, and
        retraining the best model of each cell gets the rest (TUNE_RETRAIN_SHARE).
        """
        return cls(time_budget=time_budget, retrain_share=TUNE_RETRAIN_SHARE, **settings)

    def after(self, spent: float) -> TuneConfig:
        """These settings once `spent` seconds of the budget went to work before the search
        (a fleet's baselines); ConfigError when too little is left to search at all."""
        if self.time_budget is None:
            return self
        left = self.time_budget - spent
        if left < MIN_SEARCH_SECONDS:
            needed = self.stated_budget(spent + 4 * MIN_SEARCH_SECONDS)
            raise ConfigError(
                f"fitting every series' baselines took {format_duration(spent)} of the "
                f"{format_duration(self.stated_budget(self.time_budget))} budget, leaving no "
                f"time to search; pass a budget of at least {format_duration(needed)}"
            )
        return dataclasses.replace(self, time_budget=left)

    def stated_budget(self, seconds: float) -> float:
        """The --budget the user would type for `seconds` of search and retraining."""
        return seconds if self.reserve is None else self.reserve.stated_for(seconds)

    @property
    def search_budget(self) -> float | None:
        """Seconds during which trials may start."""
        if self.time_budget is None:
            return None
        return self.time_budget * (1 - self.retrain_share)

    @property
    def retrain_budget(self) -> float | None:
        """Seconds for retraining the best model of every cell; None for no limit."""
        if self.time_budget is None or not self.retrain_share:
            return None
        return self.time_budget * self.retrain_share

    @property
    def trials_per_cell(self) -> int | None:
        """The trial cap of each cell's sub-search."""
        if self.max_trials is not None:
            return self.max_trials
        return None if self.tuner == "hyperband" else 10
