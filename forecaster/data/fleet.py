"""A fleet: a long CSV of many series of the same kind, one row per series and time step.

`time,sensor,value` with `--id-col sensor`: the cells are parsed and checked once for the whole
file (errors name the file's row), then each series is put on its own time grid with its own
duplicates and gaps handled, exactly as a one-series file would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.config import DataConfig
from forecaster.data.load import SensorData, file_row, parse_file, parse_times
from forecaster.errors import DataError


@dataclass(frozen=True)
class Skipped:
    """A series left out of a fleet, and why (too short, no complete rows...)."""

    id: str
    reason: str


@dataclass
class Fleet:
    """The series of a long file, in the order their ids first appear."""

    path: Path
    id_col: str
    series: tuple[SensorData, ...]
    config: DataConfig
    skipped: tuple[Skipped, ...] = ()

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self) -> Iterator[SensorData]:
        return iter(self.series)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every kept series' id."""
        return tuple(s.series or "" for s in self.series)

    @property
    def features(self) -> tuple[str, ...]:
        """The sensor columns every series has."""
        return self.series[0].features

    @property
    def targets(self) -> tuple[str, ...]:
        """The forecast columns."""
        return self.series[0].targets

    def without(self, skipped: list[Skipped]) -> Fleet:
        """The fleet with these series left out (and listed as skipped)."""
        gone = {s.id for s in skipped}
        kept = tuple(s for s in self.series if s.series not in gone)
        if not kept:
            reasons = "; ".join(f"'{s.id}': {s.reason}" for s in skipped[:3])
            raise DataError(f"no series of {self.path} can be used ({reasons})")
        return Fleet(self.path, self.id_col, kept, self.config, (*self.skipped, *skipped))


def series_channels(position: np.ndarray, n_series: int, rows: int) -> np.ndarray:
    """One-hot channels (len(position), rows, n_series) of each window's series position: how
    a global model with `--series-ids` is told whose window it reads."""
    onehot = np.eye(n_series, dtype=np.float32)[np.asarray(position)]
    return np.broadcast_to(onehot[:, None, :], (len(onehot), rows, n_series))


def load_fleet(path: str | Path, config: DataConfig) -> Fleet:
    """Read a long CSV with an id column and put each series on its own regular grid."""
    path = Path(path)
    id_col = config.id_col
    if id_col is None:
        raise DataError(f"no id column named for {path}; pass --id-col COLUMN")
    _refuse_id_col_in_other_options(path, config, id_col)
    parsed = parse_file(path, config, skip=(id_col,))
    if id_col not in parsed.raw.columns:
        raise DataError(
            f"id column '{id_col}' not found in {path}; columns are: "
            f"{', '.join(parsed.raw.columns)}. Pass --id-col with one of them"
        )
    ids = parsed.raw[id_col].fillna("").str.strip().loc[parsed.values.index]
    if parsed.time_col is None and _looks_like_times(ids):
        raise DataError(
            f"column '{id_col}' of {path} holds timestamps: it is the time column, not the "
            "series id; pass --id-col with the column naming each row's series"
        )
    blank = ids == ""
    if blank.any():
        first = file_row(blank.idxmax())
        if config.bad_rows != "drop":
            raise DataError(
                f"{path} row {first}, column '{id_col}': no series id ({int(blank.sum())} such "
                "rows); fill it in or pass --bad-rows drop to skip such rows"
            )
        ids = ids[~blank]
        if ids.empty:
            raise DataError(
                f"{path} has no row with a series id in column '{id_col}'; fill the column in, "
                "or pass --id-col with the column naming each row's series"
            )
    series = []
    for series_id, rows in ids.groupby(ids, sort=False).groups.items():
        series.append(parsed.on_grid(pd.Index(rows), series=str(series_id)))
    return Fleet(path, id_col, tuple(series), config)


def _refuse_id_col_in_other_options(path: Path, config: DataConfig, id_col: str) -> None:
    """The id column names series: it cannot also be read as time or as a sensor."""
    for option, names in (
        ("--target", config.targets),
        ("--features", config.features),
        ("--time-col", (config.time_col,)),
    ):
        if id_col in names:
            raise DataError(
                f"column '{id_col}' of {path} is the id column (--id-col), so it cannot also be "
                f"{option}; pass {option} with another column"
            )


def _looks_like_times(ids: pd.Series) -> bool:
    sample = ids[ids != ""].head(50)
    return not sample.empty and bool(parse_times(sample)[0].notna().mean() >= 0.9)
