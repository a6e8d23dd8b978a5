"""A fleet: a long CSV of many series of the same kind, one row per series and time step.

`time,sensor,value` with `--id-col sensor`: the cells are parsed and checked once for the whole
file (errors name the file's row), then each series is put on its own time grid with its own
duplicates and gaps handled, exactly as a one-series file would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.config import DataConfig
from forecaster.data.load import SensorData, file_row, parse_file
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


def load_fleet(path: str | Path, config: DataConfig) -> Fleet:
    """Read a long CSV with an id column and put each series on its own regular grid."""
    path = Path(path)
    id_col = config.id_col
    if id_col is None:
        raise DataError(f"no id column named for {path}; pass --id-col COLUMN")
    parsed = parse_file(path, config, skip=(id_col,))
    if id_col not in parsed.raw.columns:
        raise DataError(
            f"id column '{id_col}' not found in {path}; columns are: "
            f"{', '.join(parsed.raw.columns)}. Pass --id-col with one of them"
        )
    if id_col in (*parsed.features, parsed.time_col):
        raise DataError(
            f"column '{id_col}' of {path} is both the id column and a time or sensor column; "
            "pass --id-col with the column naming each row's series"
        )
    ids = parsed.raw[id_col].fillna("").str.strip().loc[parsed.values.index]
    blank = ids == ""
    if blank.any():
        first = file_row(blank.idxmax())
        if config.bad_rows != "drop":
            raise DataError(
                f"{path} row {first}, column '{id_col}': no series id ({int(blank.sum())} such "
                "rows); fill it in or pass --bad-rows drop to skip such rows"
            )
        ids = ids[~blank]
    series = []
    for series_id, rows in ids.groupby(ids, sort=False).groups.items():
        series.append(parsed.on_grid(pd.Index(rows), series=str(series_id)))
    return Fleet(path, id_col, tuple(series), config)
