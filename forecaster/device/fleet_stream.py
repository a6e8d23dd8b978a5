"""Streaming a long CSV of many series (one row per series and time step) in chunks.

The cells of a chunk are parsed once for every series in it; its rows are then split by series
id and each series goes on its own grid with the state `stream.FileStream` keeps for one file:
only its last `window + max_gap + 1` grid rows are carried between chunks, so memory grows with
the number of series, not with the file. Rows of a series need not be contiguous (a gateway
appends rows of all its sensors as they come); within a series they must be in time order.
The windows the series settle in a chunk come out together, a few thousand to a batch (joining
copies them), for few predictor calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.bundle import DataSpec, FleetSpec
from forecaster.config import PredictMode, UnknownPolicy
from forecaster.data.load import file_row
from forecaster.device.stream import (
    FileStream,
    OriginBatch,
    ParsedRows,
    ShortSeries,
    StreamReport,
    parse_rows,
    read_chunks,
)
from forecaster.errors import DataError

# Series named in one warning line; the rest are counted.
NAMED = 5


@dataclass
class FleetReport(StreamReport):
    """What streaming a long file found, with the series: seen, unknown, without a forecast."""

    series: int = 0  # series with rows in the file that the model knows
    unknown: dict[str, int] = field(default_factory=dict)  # id -> rows skipped
    left_out: dict[str, int] = field(default_factory=dict)  # series training skipped -> rows
    short: list[tuple[str, str]] = field(default_factory=list)  # (id, why no forecast)

    def fleet_warnings(self, path: Path) -> list[str]:
        """One line each for the unknown series skipped and the series without a forecast."""
        lines = []
        if self.unknown:
            rows = sum(self.unknown.values())
            lines.append(
                f"{path}: skipped {rows} row(s) of {len(self.unknown)} series the model was not "
                f"trained on: {_names(list(self.unknown))}"
            )
        if self.left_out:
            rows = sum(self.left_out.values())
            lines.append(
                f"{path}: skipped {rows} row(s) of {len(self.left_out)} series the model left "
                f"out of its training (too short or unusable then): {_names(list(self.left_out))}"
            )
        if self.short:
            lines.append(
                f"{path}: no forecast for {len(self.short)} series: "
                + "; ".join(f"'{i}' {why}" for i, why in self.short[:NAMED])
                + ("; ..." if len(self.short) > NAMED else "")
            )
        return lines


# Windows of series' ends yielded at a time hold at most this many chunks of rows.
FLUSH_CHUNKS = 4
# Windows of several series joined into one batch (a copy) at most, in rolling mode.
JOINED_WINDOWS = 4096


def stream_fleet(
    path: Path,
    spec: DataSpec,
    fleet: FleetSpec,
    window: int,
    *,
    mode: PredictMode = "rolling",
    chunk_rows: int = 20_000,
    report: FleetReport | None = None,
    unknown: UnknownPolicy = "error",
    tail: int = 0,
) -> Iterator[OriginBatch]:
    """Yield the windows of every series' origins (`rolling`) or of each series' last (`last`,
    with the complete ones among the `tail` origins before it).

    Each batch's `series` holds the position in `fleet.series` of every window. An id the
    model was not trained on is refused (DataError naming it and its row) unless `unknown` is
    `skip`; the rows of a series left out of training (`fleet.skipped`) are skipped and
    counted in `report.left_out`; a series too short for a forecast is reported in
    `report.short`, not refused.
    """
    report = report if report is not None else FleetReport()
    positions = {s.id: i for i, s in enumerate(fleet.series)}
    streams: dict[int, FileStream] = {}
    for chunk in read_chunks(path, spec, chunk_rows, report, fleet.id_col):
        parsed, codes, first_seen = _split_ids(path, spec, fleet, chunk, positions, report, unknown)
        # Series in the order they appear; stable, so each series' rows stay in file order.
        order = np.argsort(first_seen, kind="stable")
        starts = np.flatnonzero(np.diff(first_seen[order], prepend=-1))
        batches = []
        for start, stop in zip(starts, [*starts[1:], len(order)], strict=True):
            position = int(codes[order[start]])
            stream = streams.get(position)
            if stream is None:
                stream = FileStream(
                    path, spec, window, report, series=fleet.series[position].id, tail=tail
                )
                streams[position] = stream
            rows = parsed.take(order[start:stop])
            stream.rows += stop - start
            batch = stream.feed_rows(rows, final=False, mode=mode)
            if batch is not None:
                batches.append((position, batch))
        yield from _in_groups(batches, JOINED_WINDOWS)
    if report.rows == 0:
        raise DataError(f"{path} has no data rows; add rows below the header line")
    report.series = len(streams)
    nothing = ParsedRows(
        np.empty(0, np.int64),
        np.empty((0, len(spec.features))),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )

    def ends() -> Iterator[tuple[int, OriginBatch]]:
        for position, stream in streams.items():
            try:
                batch = stream.feed_rows(nothing, final=True, mode=mode)
            except ShortSeries:
                batch = None
            if stream.forecasts == 0:
                report.short.append((fleet.series[position].id, _why_none(stream, window, mode)))
            if batch is not None:
                yield position, batch

    # The ends of many series go to the predictor together, but no more windows at once than
    # hold a few chunks' rows: last mode's intervals read ~100 windows a series.
    yield from _in_groups(ends(), max(1, FLUSH_CHUNKS * chunk_rows // window))
    forecast = any(stream.forecasts for stream in streams.values())
    if not streams:
        raise DataError(
            f"{path} has no rows of a series the model was trained on (its series: "
            f"{_names([*report.unknown, *report.left_out])}); pass a file of the series in "
            "the bundle"
        )
    if mode == "last" and not forecast:
        raise DataError(
            f"no series of {path} has the {window} complete rows at its end that a forecast "
            f"reads ({len(report.short)} series: {_names([i for i, _ in report.short])}); pass "
            "longer series"
        )


def _split_ids(
    path: Path,
    spec: DataSpec,
    fleet: FleetSpec,
    chunk: pd.DataFrame,
    positions: dict[str, int],
    report: FleetReport,
    unknown: UnknownPolicy,
) -> tuple[ParsedRows, np.ndarray, np.ndarray]:
    """A chunk's good rows, each one's series position and its series' rank of first
    appearance in the chunk; blank and unknown ids handled."""
    # Ids repeat on every row: each distinct one is stripped once, then equal ones merged.
    raw, distinct = pd.factorize(chunk[fleet.id_col].fillna(""))
    merged, stripped = pd.factorize(np.array([str(i).strip() for i in distinct], dtype=object))
    ids = merged[raw]
    blank = (stripped == "")[ids]
    if blank.any():
        if spec.bad_rows != "drop":
            raise DataError(
                f"{path} row {file_row(chunk.index[int(np.argmax(blank))])}, column "
                f"'{fleet.id_col}': no series id; fill it in (the model was trained with "
                "--bad-rows error)"
            )
        report.rows_dropped += int(blank.sum())
        chunk, ids = chunk[~blank], ids[~blank]
    parsed = parse_rows(path, spec, chunk, report)
    local, present = pd.factorize(ids[parsed.kept])
    names = stripped[present]
    # -1: an id the model never saw; -2: a series it left out of training (too short then).
    left_out = {i for i, _ in fleet.skipped}
    known = np.array(
        [positions.get(str(n), -2 if str(n) in left_out else -1) for n in names], np.int64
    )
    codes = known[local] if len(local) else np.empty(0, np.int64)
    if (known < 0).any():
        if unknown == "error" and (known == -1).any():
            at = int(np.argmax(codes == -1))
            try:
                fleet.member(str(names[local[at]]))
            except DataError as exc:
                raise DataError(
                    f"{path} row {file_row(parsed.rows[at])}: {exc} (or pass --unknown skip)"
                ) from None
        counts = np.bincount(local, minlength=len(names))
        for name, code, count in zip(names, known, counts, strict=True):
            if code < 0:
                tally = report.unknown if code == -1 else report.left_out
                tally[str(name)] = tally.get(str(name), 0) + int(count)
        good = np.flatnonzero(codes >= 0)
        parsed, codes, local = parsed.take(good), codes[good], local[good]
    return parsed, codes, local


def _in_groups(batches: Iterable[tuple[int, OriginBatch]], most: int) -> Iterator[OriginBatch]:
    """Series' batches joined at most `most` windows at a time (one series' may be more), in
    order: joining copies the windows (each series' are views of its rows), so a chunk's in
    one batch would cost a copy of every window of the chunk."""
    group: list[tuple[int, OriginBatch]] = []
    size = 0
    for position, batch in batches:
        if group and size + len(batch.x) > most:
            yield _joined(group)
            group, size = [], 0
        group.append((position, batch))
        size += len(batch.x)
    if group:
        yield _joined(group)


def _joined(batches: list[tuple[int, OriginBatch]]) -> OriginBatch:
    """The windows of several series as one batch, each window tagged with its series."""
    if len(batches) == 1:
        position, batch = batches[0]
        return OriginBatch(batch.last_times, batch.x, np.full(len(batch.x), position, np.int64))
    return OriginBatch(
        np.concatenate([b.last_times for _, b in batches]),
        np.concatenate([b.x for _, b in batches]),
        np.concatenate([np.full(len(b.x), p, np.int64) for p, b in batches]),
    )


def _why_none(stream: FileStream, window: int, mode: PredictMode) -> str:
    """Why a series gave no forecast, in a few words."""
    if stream.rows < window:
        return f"({stream.rows} rows, fewer than the {window} a forecast reads)"
    where = "at its end" if mode == "last" else "anywhere"
    return f"(no {window} complete rows in a row {where}: gaps longer than --max-gap)"


def _names(ids: list[str]) -> str:
    """The first few ids, quoted."""
    return ", ".join(f"'{i}'" for i in ids[:NAMED]) + (", ..." if len(ids) > NAMED else "")
