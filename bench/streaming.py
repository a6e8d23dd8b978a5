"""6. Streaming predict: peak RSS and rows/s of `forecaster predict --mode rolling`, two sizes.

The smaller file also runs with `--adapt 0` and with `--level none`: the cost of the prediction
intervals (the default 80% and 95% bounds, recalibrated from the last 100 errors per step, and the
bundle's fixed ones) measured side by side.

The CSVs are generated in the run's temporary work directory (deleted afterwards) with
forecaster.data.synthetic.make_series, formatted by vectorised numpy into fixed-width rows, so
writing them costs seconds. `forecaster predict` runs as a child process writing its forecasts
to standard output, discarded (no disk in the measurement); peak RSS is that command's own
ru_maxrss from wait4, started from a small launcher (see bench.timing).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bench import fixtures
from bench.fixtures import Context
from bench.results import Section, Table, Target
from bench.timing import Measured, forecaster_command, run_measured

RSS_TARGET_MB = 300.0
INTERVALS_COST = 0.10  # predict with intervals keeps at least 90% of the rows/s without
INTERVAL_REPEATS = 5
# (label, extra arguments): the default intervals (adapting), the bundle's fixed ones, none.
PLAIN = " --level none"
INTERVAL_RUNS = (("", ()), (" --adapt 0", ("--adapt", "0")), (PLAIN, ("--level", "none")))
FLAT_RATIO = 1.2  # "independent of file size": the larger file may cost at most 20% more
ROW_BYTES = 44  # "2024-01-01 00:00:00,20.1234,60.1234,50.1234\n"
CHUNK = 168 * 6000  # rows generated at a time: whole weeks, so the seasonality is continuous
# Hourly rows from 2024 fit pandas' nanosecond timestamps until 2262.
MAX_ROWS = int((np.datetime64("2262-01-01") - np.datetime64("2024-01-01")) / np.timedelta64(1, "h"))


def _format(frame: object) -> bytes:
    """Fixed-width CSV rows from a make_series frame, without a Python loop per row."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    stamps = frame["time"].to_numpy().astype("datetime64[s]")
    text = np.datetime_as_string(stamps, unit="s").astype("S19").view(np.uint8).reshape(-1, 19)
    out = np.empty((len(frame), ROW_BYTES), np.uint8)
    out[:, :19] = text
    out[:, 10] = ord(" ")  # ISO 'T' -> the space forecaster writes
    position = 19
    for column in ("temp", "humidity", "load"):
        values = frame[column].to_numpy()
        if values.min() < 0 or values.max() >= 100:
            raise ValueError(f"{column} leaves [0, 100): the fixed-width writer cannot format it")
        q = np.rint(values * 1e4).astype(np.int64)  # DD.dddd
        out[:, position] = ord(",")
        for k, divisor in enumerate((100_000, 10_000, 0, 1000, 100, 10, 1)):
            out[:, position + 1 + k] = ord(".") if divisor == 0 else 48 + q // divisor % 10
        position += 8
    out[:, position] = ord("\n")
    return out.tobytes()


def write_csv(path: Path, target_bytes: float) -> int:
    """A `time,temp,humidity,load` CSV of about `target_bytes`; returns its data rows."""
    from forecaster.data.synthetic import make_series

    total = max(1, int(target_bytes // ROW_BYTES))
    if total > MAX_ROWS:
        raise ValueError(
            f"{target_bytes / 1e6:.0f} MB of hourly rows ({total:,}) runs past 2262, the end of "
            f"pandas' nanosecond timestamps; the largest is {MAX_ROWS * ROW_BYTES / 1e6:.0f} MB"
        )
    start = np.datetime64("2024-01-01T00:00:00")
    with path.open("wb") as handle:
        handle.write(b"time,temp,humidity,load\n")
        for i, first in enumerate(range(0, total, CHUNK)):
            rows = min(CHUNK, total - first)
            stamp = str(start + np.timedelta64(first, "h"))
            handle.write(_format(make_series(rows=rows, seed=i, start=stamp)))
    return total


def predict(
    bundle: Path,
    csv: Path,
    chunk: int | None,
    timeout_s: float,
    *extra: str,
    mode: str = "rolling",
) -> Measured:
    """`forecaster predict` on `csv` in a child process, output discarded: its time and peak RSS."""
    command = [*forecaster_command(), "predict", str(bundle), str(csv), "--mode", mode]
    command += extra
    if chunk is not None:
        command += ["--chunk-rows", str(chunk)]
    return run_measured(
        command,
        timeout_s=timeout_s,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
        measure_rss=True,
    )


def run(ctx: Context) -> Section:
    """Generate the two files, then stream each through `forecaster predict`."""
    settings = ctx.settings
    bundle = fixtures.ensure_bundle(ctx, "gru")
    folder = ctx.work / "stream"
    folder.mkdir(exist_ok=True)
    files: dict[str, tuple[Path, int, float]] = {}
    for mb in settings.stream_mb:
        path = folder / f"rolling-{mb:g}mb.csv"
        started = time.perf_counter()
        rows = write_csv(path, mb * 1e6)
        ctx.log(f"wrote {path.name}: {rows:,} rows in {time.perf_counter() - started:.1f} s")
        files[f"{mb:g} MB"] = (path, rows, path.stat().st_size / 1e6)

    table = Table(
        ["run", "file", "rows", "--chunk-rows", "seconds", "rows/s", "peak RSS MB"],
        title="`forecaster predict BUNDLE FILE --mode rolling > /dev/null` "
        "(GRU(64) bundle as shipped by `forecaster export`)",
    )
    measured: dict[str, dict[str, float | str]] = {}

    def record(label: str, size: str, chunk: int | None, done: Measured) -> None:
        _, rows, megabytes = files[size]
        if not done.ok:
            table.add(label, f"{megabytes:.1f} MB", rows, chunk or "default", None, None, None)
            measured[f"{label} {size}"] = {"error": done.failure()}
            return
        table.add(
            label,
            f"{megabytes:.1f} MB",
            rows,
            chunk or "default",
            done.seconds,
            rows / done.seconds,
            done.peak_rss_mb,
        )
        measured[f"{label} {size}"] = {
            "seconds": done.seconds,
            "rows": rows,
            "rows_per_s": rows / done.seconds,
            "peak_rss_mb": done.peak_rss_mb,
        }

    sizes = list(files)
    for size in sizes:
        ctx.log(f"forecaster predict --mode rolling on {size}")
        record("forecaster predict", size, None, predict(bundle, files[size][0], None, _cap(ctx)))
    # With adapting, fixed and no intervals in turn (rotating which goes first), repeated: other
    # work on a shared machine moves single runs by more than the differences measured, so the
    # ratio is the median of each repeat's own ratio, and the table shows each one's best run.
    best: dict[str, Measured] = {}
    ratios: dict[str, list[float]] = {label: [] for label, _ in INTERVAL_RUNS}
    for repeat in range(INTERVAL_REPEATS):
        seconds: dict[str, float] = {}
        for k in range(len(INTERVAL_RUNS)):
            label, extra = INTERVAL_RUNS[(repeat + k) % len(INTERVAL_RUNS)]
            ctx.log(f"forecaster predict --mode rolling{label} on {sizes[0]}")
            done = predict(bundle, files[sizes[0]][0], None, _cap(ctx), *extra)
            if not done.ok:
                continue
            seconds[label] = done.seconds
            if label not in best or done.seconds < best[label].seconds:
                best[label] = done
        if PLAIN in seconds:
            for label, taken in seconds.items():
                ratios[label].append(seconds[PLAIN] / taken)
    for label, done in best.items():
        record(f"forecaster predict{label}, best of {INTERVAL_REPEATS}", sizes[0], None, done)
    if settings.stream_chunk_compare:
        chunk = settings.stream_chunk_compare
        ctx.log(f"forecaster predict --mode rolling --chunk-rows {chunk} on {sizes[0]}")
        done = predict(bundle, files[sizes[0]][0], chunk, _cap(ctx))
        record(f"forecaster predict, chunk {chunk:,}", sizes[0], chunk, done)
    section = Section("streaming", "", tables=[table])
    small, big = (measured.get(f"forecaster predict {s}", {}) for s in sizes)
    rss = [float(m["peak_rss_mb"]) for m in (small, big) if "peak_rss_mb" in m]
    if len(rss) == 2:
        growth = rss[1] / rss[0]
        per_row = (rss[1] - rss[0]) / (files[sizes[1]][1] - files[sizes[0]][1]) * 1024
        section.targets = [
            Target(
                "peak RSS of rolling predict",
                f"< {RSS_TARGET_MB:.0f} MB",
                f"{rss[0]:.0f} MB ({sizes[0]}), {rss[1]:.0f} MB ({sizes[1]})",
                max(rss) < RSS_TARGET_MB,
            ),
            Target(
                "RSS independent of file size",
                f"larger file within {FLAT_RATIO:.1f}x",
                f"{growth:.2f}x for {files[sizes[1]][1] / files[sizes[0]][1]:.1f}x the rows "
                f"(+{per_row:.1f} KiB per row)",
                growth <= FLAT_RATIO,
            ),
        ]
        rate = float(big["rows_per_s"])
        gigabyte_rows = 1e9 / ROW_BYTES
        section.notes.append(
            f"At {rate:,.0f} rows/s a 1 GB file ({gigabyte_rows / 1e6:.1f}M rows) would take "
            f"about {gigabyte_rows / rate / 60:.0f} min"
            + (
                f" and, growing {per_row:.1f} KiB per row, about "
                f"{(rss[0] + per_row * gigabyte_rows / 1024) / 1024:.0f} GiB of memory"
                if growth > FLAT_RATIO
                else ""
            )
            + f"; so this run streams {' and '.join(sizes)} instead of the ~1 GB the issue asks "
            "for (and hourly rows from 2024 run out of nanosecond timestamps in 2262, at "
            f"{MAX_ROWS * ROW_BYTES / 1e6:.0f} MB). `python -m bench --stream-mb A,B` picks "
            "other sizes."
        )
    for label, what in (("", "adapting (--adapt 100)"), (" --adapt 0", "fixed (--adapt 0)")):
        if not ratios[label]:
            continue
        ratio = float(np.median(ratios[label]))
        spread = ", ".join(f"{r:.2f}" for r in ratios[label])
        section.targets.append(
            Target(
                f"predict throughput with intervals (80%, 95%), {what}",
                f"within {INTERVALS_COST:.0%} of `--level none`",
                f"{ratio:.2f}x the rows/s ({sizes[0]}, median of {len(ratios[label])} "
                f"interleaved repeats: {spread})",
                ratio >= 1 - INTERVALS_COST,
            )
        )
    other = measured.get(f"forecaster predict, chunk {settings.stream_chunk_compare:,} {sizes[0]}")
    if other and "peak_rss_mb" in other and "peak_rss_mb" in small:
        section.notes.append(
            f"Memory follows --chunk-rows, not the file: {float(small['peak_rss_mb']):.0f} MB "
            f"with the default, {float(other['peak_rss_mb']):.0f} MB with "
            f"--chunk-rows {settings.stream_chunk_compare:,} on the same file "
            f"({float(small['rows_per_s']):,.0f} vs {float(other['rows_per_s']):,.0f} rows/s)."
        )
    section.notes.append(
        "Every origin of the file is forecast (`--mode rolling`): each input row becomes "
        "12 output rows (origin, timestamp, step, forecast and, by default, its 80% and 95% "
        "bounds recalibrated from the last 100 errors per step), formatted by numpy a block "
        "of rows at a time."
    )
    section.data = {
        "runs": measured,
        "files": {k: {"rows": v[1], "mb": v[2]} for k, v in files.items()},
        "interval_ratios": {label.strip() or "adapting": r for label, r in ratios.items()},
    }
    for path, _, _ in files.values():
        path.unlink(missing_ok=True)
    return section


def _cap(ctx: Context) -> float:
    """A child may run until the run's deadline, and at least two minutes."""
    return max(120.0, ctx.remaining())
