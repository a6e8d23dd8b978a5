"""7. Fleet predict: rows/s and peak RSS of `forecaster predict` over many series in one long
file, against one series of the same number of rows, side by side.

The long file is `time,sensor,temp,humidity,load` with the rows of every series at each time step
together, as a gateway logs them (the id column is not sorted), generated here by a small
vectorised generator (a daily cycle per series with its own level, swing and phase). The fleet
bundle is the GRU(64) bundle of the other sections given a `FleetSpec`: each series' scaler is
fitted on its first 70% (so each window is scaled with its own numbers, as a global model's
would be) and carries the bundle's intervals. The one-series file is bench.streaming's, with the
same total rows, predicted by the bundle as shipped. Both run as child processes writing to
standard output, discarded; peak RSS is each command's own (bench.timing).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from bench import fixtures, streaming
from bench.fixtures import Context
from bench.results import Section, Table, Target
from bench.timing import Measured

THROUGHPUT_GOAL = 0.5  # the fleet file keeps at least half the rows/s of one series
# Last mode's runs take seconds, where a shared machine moves single runs by a third: best of 3.
LAST_REPEATS = 3
RSS_GOAL = 1.5  # and at most 1.5x its peak RSS
BLOCK_STEPS = 100  # time steps generated and written at a time
FEATURES = ("temp", "humidity", "load")
TRAIN_SHARE = 0.7


def series_values(series: int, rows: int, seed: int = fixtures.SEED) -> np.ndarray:
    """Hourly values (series, rows, 3): temperature-like, humidity following it, a load."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(12, 28, (series, 1))
    swing = rng.uniform(2, 8, (series, 1))
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    day = 2 * np.pi * np.arange(rows)[None, :] / 24
    temp = level + swing * np.sin(day + phase) + rng.normal(0, 0.1, (series, rows))
    humidity = 60 - 2 * (temp - level) + rng.normal(0, 0.2, (series, rows))
    load = 50 + 10 * np.sin(day + phase - 1) + rng.normal(0, 0.5, (series, rows))
    return np.stack([temp, humidity, load], axis=-1).round(4)


def series_id(i: int) -> str:
    """The id of series i: fixed width, so the writer stays vectorised."""
    return f"s{i:04d}"


def write_fleet_csv(path: Path, values: np.ndarray) -> int:
    """The series as one long CSV, every series' row of a time step together; returns rows."""
    import pandas as pd

    series, rows, _ = values.shape
    ids = np.array([series_id(i) + "," for i in range(series)], "S6").view(np.uint8)
    ids = ids.reshape(series, 6)
    start = np.datetime64("2024-01-01T00:00:00")
    with path.open("wb") as handle:
        handle.write(b"time,sensor,temp,humidity,load\n")
        for first in range(0, rows, BLOCK_STEPS):
            block = values[:, first : first + BLOCK_STEPS]  # (series, steps, 3)
            steps = block.shape[1]
            times = start + np.arange(first, first + steps).astype("timedelta64[h]")
            flat = block.transpose(1, 0, 2).reshape(-1, 3)  # time-major: a gateway's order
            frame = pd.DataFrame(flat, columns=list(FEATURES))
            frame.insert(0, "time", np.repeat(times, series))
            text = np.frombuffer(streaming._format(frame), np.uint8)
            text = text.reshape(-1, streaming.ROW_BYTES)
            # "TIME," + "sNNNN," + the numbers
            out = np.concatenate([text[:, :20], np.tile(ids, (steps, 1)), text[:, 20:]], axis=1)
            handle.write(out.tobytes())
    return series * rows


def fleet_bundle(ctx: Context, values: np.ndarray) -> Path:
    """The shipped GRU bundle as a fleet of these series, each with its own min-max scaler."""
    from forecaster.bundle import Bundle, FleetSpec, SeriesSpec
    from forecaster.scaling import MinMaxParams

    source = fixtures.ensure_bundle(ctx, "gru")
    directory = ctx.work / "fleet-bundle"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(source, directory)
    bundle = Bundle.load(directory)
    train = values[:, : int(values.shape[1] * TRAIN_SHARE)]
    low, high = train.min(axis=1), train.max(axis=1)
    scale = 1 / np.maximum(high - low, 1e-9)
    series = tuple(
        SeriesSpec(
            id=series_id(i),
            scaler=MinMaxParams(
                FEATURES,
                tuple(low[i].tolist()),
                tuple(high[i].tolist()),
                tuple(scale[i].tolist()),
                tuple((-low[i] * scale[i]).tolist()),
            ),
            train_start="2024-01-01 00:00:00",
            train_end="",
            mase_scale=(1.0,),
            rows=train.shape[1],
            intervals=bundle.intervals,
        )
        for i in range(len(values))
    )
    bundle.replace(fleet=FleetSpec("sensor", series)).save(directory)
    return directory


def run(ctx: Context) -> Section:
    """Generate the long file and the one-series file, then predict both in each mode."""
    settings = ctx.settings
    n_series, n_rows = settings.fleet_series, settings.fleet_rows
    folder = ctx.work / "fleet"
    folder.mkdir(exist_ok=True)
    started = time.perf_counter()
    values = series_values(n_series, n_rows)
    bundle = fleet_bundle(ctx, values)
    fleet_csv = folder / "fleet.csv"
    total = write_fleet_csv(fleet_csv, values)
    del values
    single_csv = folder / "single.csv"
    single_rows = streaming.write_csv(single_csv, total * streaming.ROW_BYTES)
    ctx.log(
        f"wrote {total:,} rows of {n_series:,} series and {single_rows:,} rows of one series "
        f"in {time.perf_counter() - started:.1f} s"
    )
    single_bundle = fixtures.ensure_bundle(ctx, "gru")
    files = {
        f"{n_series:,} series x {n_rows:,} rows": (bundle, fleet_csv, total),
        f"1 series x {single_rows:,} rows": (single_bundle, single_csv, single_rows),
    }

    def repeats_of(mode: str) -> int:
        return max(settings.fleet_repeats, LAST_REPEATS if mode == "last" else 1)

    table = Table(
        ["file", "--mode", "rows", "MB", "seconds", "rows/s", "peak RSS MB"],
        title="`forecaster predict BUNDLE FILE --mode MODE > /dev/null`, the fleet file and one "
        "series of as many rows taking turns, best of "
        + ", ".join(f"{repeats_of(m)} ({m})" for m in settings.fleet_modes),
    )
    measured: dict[str, dict[str, float | str]] = {}
    for mode in settings.fleet_modes:
        repeats = repeats_of(mode)
        # The two files take turns, best of `repeats` each: a shared machine moves single runs.
        best: dict[str, Measured] = {}
        for _ in range(repeats):
            for label, (bundle_dir, csv, _) in files.items():
                ctx.log(f"forecaster predict --mode {mode} on {label}")
                done = streaming.predict(
                    bundle_dir, csv, None, max(120.0, ctx.remaining()), mode=mode
                )
                kept = best.get(label)
                if kept is None or (done.ok and (not kept.ok or done.seconds < kept.seconds)):
                    best[label] = done
        for label, (_, csv, rows) in files.items():
            done = best[label]
            megabytes = csv.stat().st_size / 1e6
            key = f"{label}, {mode}"
            if not done.ok:
                table.add(label, mode, rows, megabytes, None, None, None)
                measured[key] = {"error": done.failure()}
                continue
            table.add(
                label, mode, rows, megabytes, done.seconds, rows / done.seconds, done.peak_rss_mb
            )
            measured[key] = {
                "seconds": done.seconds,
                "rows": rows,
                "rows_per_s": rows / done.seconds,
                "peak_rss_mb": done.peak_rss_mb,
                "repeats": repeats,
            }
    section = Section("fleet", "", tables=[table])
    fleet_label, single_label = files
    for mode in settings.fleet_modes:
        many, one = (
            measured.get(f"{fleet_label}, {mode}", {}),
            measured.get(f"{single_label}, {mode}", {}),
        )
        if "rows_per_s" not in many or "rows_per_s" not in one:
            continue
        speed = float(many["rows_per_s"]) / float(one["rows_per_s"])
        memory = float(many["peak_rss_mb"]) / float(one["peak_rss_mb"])
        section.targets += [
            Target(
                f"fleet predict --mode {mode} rows/s vs one series of as many rows",
                f">= {THROUGHPUT_GOAL:.1f}x",
                f"{speed:.2f}x ({float(many['rows_per_s']):,.0f} vs "
                f"{float(one['rows_per_s']):,.0f} rows/s, {n_series:,} series)",
                speed >= THROUGHPUT_GOAL,
            ),
            Target(
                f"fleet predict --mode {mode} peak RSS vs one series",
                f"<= {RSS_GOAL:.1f}x",
                f"{memory:.2f}x ({float(many['peak_rss_mb']):.0f} vs "
                f"{float(one['peak_rss_mb']):.0f} MB)",
                memory <= RSS_GOAL,
            ),
        ]
    section.notes.append(
        "Each run is one process; the fleet file's rows come every series at each time step, "
        "so every chunk of --chunk-rows (20,000) rows holds rows of every series and each "
        "series' state (its last window + max_gap + 1 rows) is carried from chunk to chunk. "
        "Rolling mode forecasts every origin of every series; last mode one per series. "
        "Rows/s include the command's start (about half a second), which weighs on --quick's "
        "small files; the fleet's extra memory is mostly its bundle.json (each series' scaler "
        "and intervals: about 20 KB per series once loaded)."
    )
    section.data = {"runs": measured, "series": n_series, "rows_per_series": n_rows}
    for _, csv, _ in files.values():
        csv.unlink(missing_ok=True)
    return section
