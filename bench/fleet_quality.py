"""`python -m bench.fleet_quality`: one global model over a fleet of series, measured.

1. **stations**: `forecaster run data/stations.csv --id-col station` (one model for the four
   weather stations) against one `forecaster run` per station given a quarter of the budget
   each, every model beside each station's own baselines on that station's test origins.
2. **generated**: `forecaster run` on 1,000 generated series x 2,000 rows with `--budget`:
   its wall time against the budget, and what each stage took.

Writes bench/fleet_quality.md and .json. Section 1 takes about twice the budget, section 2 the
budget plus a few minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import pandas as pd

from bench import machine
from bench.results import Section, Table, Target, section_markdown
from bench.timing import forecaster_command
from forecaster.data.synthetic import make_fleet
from forecaster.tune.config import parse_duration

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STATIONS = ROOT / "data" / "stations.csv"
TARGET = "temp_c"
TIE = 0.02  # the verdicts' tie: within 2% is neither better nor worse


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_quality", description=__doc__)
    parser.add_argument("--budget", default="12m", help="the global run's budget (section 1)")
    parser.add_argument("--fleet-budget", default="40m", help="budget of section 2's run")
    parser.add_argument("--series", type=int, default=1000, help="section 2's series")
    parser.add_argument("--rows", type=int, default=2000, help="section 2's rows per series")
    parser.add_argument("--only", default="stations,generated", help="sections to run")
    parser.add_argument("--work", type=Path, default=HERE / "out" / "fleet", help="run folders")
    parser.add_argument("--out", type=Path, default=HERE, help="results directory")
    parser.add_argument("--collect-only", action="store_true", help="tabulate runs in --work")
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="SECTION:TEXT",
        help="a note on how a section's runs went (e.g. generated:...), added to its notes",
    )
    return parser.parse_args(argv)


def run(csv: Path, out: Path, budget: str, *extra: str, target: str = TARGET) -> float:
    """`forecaster run` on `csv`; returns its wall time in seconds (also kept beside the run)."""
    command = [*forecaster_command(), "run", str(csv), "--target", target, "--out", str(out)]
    command += ["--overwrite", "--budget", budget, *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    (out / "bench-seconds.txt").write_text(f"{seconds}\n")
    return seconds


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _shipped(run_dir: Path) -> dict[str, Any]:
    export = _read(run_dir / "bundle" / "bundle.json")["metrics"]["export"]
    shipped: dict[str, Any] = next(m for m in export["modes"] if m["mode"] == export["shipped"])
    return shipped


def global_scores(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per station: the global (Keras) model's MASE and its best baseline's, from fleet_metrics."""
    fleet = _read(run_dir / "search" / "winner" / "fleet_metrics.json")
    return {
        s["id"]: {
            "model": s["mase"]["model"],
            "best_baseline": s["best_baseline"],
            "best_baseline_mase": s["mase"][s["best_baseline"]],
            "origins": s["origins"],
        }
        for s in fleet["series"]
    }


def local_scores(run_dir: Path) -> dict[str, Any]:
    """One station's own run: its winner's (Keras) MASE, the shipped file's, the best baseline."""
    metrics = _read(run_dir / "search" / "winner" / "metrics.json")
    scores = metrics["scores"]
    best = metrics["best_baseline"]
    return {
        "model": scores["model"]["mase"],
        "shipped": _shipped(run_dir)["mase"],
        "best_baseline": best,
        "best_baseline_mase": scores[best]["mase"],
        "origins": metrics["origins"],
    }


def stations(work: Path, budget: str, collect_only: bool) -> Section:
    """Section 1: the global model against one model per station, with the same total budget."""
    frame = pd.read_csv(STATIONS)
    names = sorted(frame["station"].unique())
    share = f"{parse_duration(budget) / len(names):.0f}s"
    seconds: dict[str, float] = {}
    if not collect_only:
        seconds["global"] = run(STATIONS, work / "global", budget, "--id-col", "station")
        for name in names:
            csv = work / f"{name}.csv"
            frame[frame["station"] == name].drop(columns="station").to_csv(csv, index=False)
            seconds[name] = run(csv, work / name, share)
    fleet = global_scores(work / "global")
    local = {name: local_scores(work / name) for name in names}
    table = Table(
        ["station", "best baseline", "its MASE", "global model", "vs best", "own model", "vs best"],
        title="Test MASE per station (Keras models; lower is better)",
    )
    for name in names:
        g, own = fleet[name], local[name]
        table.add(
            name,
            g["best_baseline"],
            g["best_baseline_mase"],
            g["model"],
            f"{1 - g['model'] / g['best_baseline_mase']:+.0%}",
            own["model"],
            f"{1 - own['model'] / own['best_baseline_mase']:+.0%}",
        )
    global_median = median(fleet[n]["model"] for n in names)
    local_median = median(local[n]["model"] for n in names)
    best_median = median(fleet[n]["best_baseline_mase"] for n in names)
    beats = [n for n in names if fleet[n]["model"] < fleet[n]["best_baseline_mase"] * (1 - TIE)]
    result = Section("fleet_stations", "A fleet of real series: one global model vs one each")
    result.tables.append(table)
    shipped = _shipped(work / "global")
    result.targets += [
        Target(
            "global model's median per-series MASE below the best baseline's",
            "on most series",
            f"{len(beats)} of {len(names)} series beat their best baseline by over 2%; median "
            f"{global_median:.3f} vs {best_median:.3f}",
            len(beats) > len(names) / 2 and global_median < best_median,
        ),
        Target(
            "no worse than one model per series with the same budget",
            "median per-series MASE",
            f"global {global_median:.3f} vs per-station {local_median:.3f} "
            f"({global_median / local_median - 1:+.1%}; within 2% is a tie)",
            global_median <= local_median * (1 + TIE),
        ),
    ]
    result.notes.append(
        f"data/stations.csv ({len(names)} TMY weather stations, hourly, target {TARGET}, "
        f"rel_humidity an input). Global: `forecaster run data/stations.csv --target {TARGET} "
        f"--id-col station --budget {budget}`; own: `forecaster run STATION.csv --target "
        f"{TARGET} --budget {share}` per station, the same {budget} in all. Each station's "
        "split, baselines and MASE scale are its own in both; the two runs may choose "
        "different windows, so their test origins can differ by a window's length. The "
        f"global model's shipped file ({shipped['mode']}, {shipped['size_bytes']:,} bytes) "
        f"scores a pooled MASE of {shipped['mase']:.3f} on every station's test origins. "
        "Both may use the decomposition reference: a station's own model with its own "
        "smoothing, the global model with each station's own seasonal profiles and one "
        "smoothing for all."
    )
    if not seconds:
        seconds = {
            name: float((work / name / "bench-seconds.txt").read_text())
            for name in ["global", *names]
            if (work / name / "bench-seconds.txt").exists()
        }
    if seconds:
        result.notes.append(
            "Wall time: "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
            + " (one run each, on this machine)."
        )
    result.data = {
        "global": fleet,
        "local": local,
        "seconds": seconds,
        "machine": machine.describe(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return result


def generated(work: Path, n_series: int, rows: int, budget: str, collect_only: bool) -> Section:
    """Section 2: `forecaster run` over a large generated fleet, within its budget."""
    csv = work / f"fleet-{n_series}x{rows}.csv"
    run_dir = work / f"fleet-{n_series}x{rows}"
    if not collect_only:
        make_fleet(n_series, rows, seed=0).to_csv(csv, index=False)
        run(csv, run_dir, budget, "--id-col", "sensor", target="value")
    seconds = float((run_dir / "bench-seconds.txt").read_text())
    comparison = _read(run_dir / "search" / "comparison.json")
    fleet = _read(run_dir / "search" / "winner" / "fleet_metrics.json")
    shipped = _shipped(run_dir)
    result = Section("fleet_generated", f"{n_series:,} generated series x {rows:,} rows")
    table = Table(["measure", "value"], title="One `forecaster run --id-col sensor`")
    table.add("budget", budget)
    table.add("wall time", f"{seconds / 60:.1f} min")
    table.add("trials", json.dumps(comparison["search"]["trials"]))
    table.add("search seconds", comparison["search"]["search_seconds"])
    table.add("series scored", len(fleet["series"]))
    table.add("model median MASE", fleet["spreads"]["model"]["median"])
    table.add("best baseline median MASE", fleet["spreads"]["best_baseline"]["median"])
    table.add("wins / ties / losses", f"{fleet['wins']} / {fleet['ties']} / {fleet['losses']}")
    table.add("shipped", f"{shipped['mode']}, {shipped['size_bytes']:,} bytes")
    result.tables.append(table)
    limit = parse_duration(budget)
    result.targets.append(
        Target(
            f"`forecaster run` on {n_series:,} x {rows:,} finishes within its budget",
            budget,
            f"{seconds / 60:.1f} min",
            seconds <= limit,
        )
    )
    result.notes.append(
        f"`make_fleet({n_series}, {rows}, seed=0)`: series of one kind with their own level, "
        "amplitude, phase, trend and noise, a third with a weekly cycle. Every series' "
        "baselines are fitted once, in one child process per core, before the search; the "
        "search draws at most 20,000 windows per epoch from all series. The series are made "
        "for timing: a daily sine and noise, which Holt-Winters models almost exactly."
    )
    result.data = {"seconds": seconds, "machine": machine.describe()}
    return result


def main(argv: list[str]) -> int:
    """Run the sections asked for, write bench/fleet_quality.md and .json."""
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    sections = []
    only = args.only.split(",")
    if "stations" in only:
        sections.append(stations(args.work, args.budget, args.collect_only))
    if "generated" in only:
        sections.append(
            generated(args.work, args.series, args.rows, args.fleet_budget, args.collect_only)
        )
    for note in args.note:
        key, _, text = note.partition(":")
        for section in sections:
            if section.key == f"fleet_{key}":
                section.notes.append(text)
    text = "".join(section_markdown(i + 1, s) for i, s in enumerate(sections))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet_quality.md").write_text(text)
    (args.out / "fleet_quality.json").write_text(
        json.dumps([s.to_json() for s in sections], indent=2) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
