"""`python -m bench.fleet_id`: should a global model be told which series a window comes from?

The same global GRU is trained with and without the series' identity as an input: a one-hot
vector of the series, constant over the window, as channels the window normalization leaves
alone (`--series-ids`). Through the recurrent layer's input weights that is an embedding of the
id (one learned vector per series added to the gates), the usual way global models get the id.
Both variants see the same windows, seeds and epochs and are scored per series beside each
series' own baselines, on the stations and on a generated fleet. Writes bench/fleet_id.md and
.json; takes about half an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

from bench import machine
from bench.results import Section, Table, section_markdown
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.data.fleet import Fleet, load_fleet
from forecaster.data.synthetic import make_fleet

HERE = Path(__file__).resolve().parent
STATIONS = HERE.parent / "data" / "stations.csv"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_id", description=__doc__)
    parser.add_argument("--seeds", default="1,2", help="training seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--series", type=int, default=40, help="generated fleet's series")
    parser.add_argument("--work", type=Path, default=HERE / "out" / "fleet_id")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--collect-only", action="store_true", help="tabulate the rows already in --work"
    )
    return parser.parse_args(argv)


def measure(fleet: Fleet, seeds: list[int], epochs: int, log: Path) -> list[dict[str, Any]]:
    """Train both variants per seed; each one's per-series figures, also appended to `log`."""
    from forecaster.data.lags import lag_seasons
    from forecaster.evaluation.fleet import FleetEvaluation
    from forecaster.model.fit import train_model
    from forecaster.model.pooled import prepare_pooled
    from forecaster.runs.fleet import (
        check_fleet_baselines,
        fit_fleet_baselines,
        fleet_seasons,
        score_series,
    )

    split = SplitConfig()
    seasons = fleet_seasons(fleet, split)
    window = WindowConfig(48, 12, lags=True)
    scored, skipped = check_fleet_baselines(
        fleet, split, window, fit_fleet_baselines(fleet, split, seasons)
    )
    fleet = fleet.without(skipped) if skipped else fleet
    lags = lag_seasons(seasons, window.window, window.horizon)
    plain = prepare_pooled(fleet, split, window, lags)
    ids = prepare_pooled(fleet, split, dataclasses.replace(window, series_ids=True), lags)
    rows = []
    for variant, pooled in (("values only", plain), ("values + series id", ids)):
        for seed in seeds:
            started = time.perf_counter()
            result = train_model(
                pooled,
                ModelConfig(cell="gru", units=32, season=seasons[0]),
                TrainConfig(epochs=epochs, patience=5, seed=seed, windows_per_epoch=20_000),
            )
            evaluations, _ = score_series(result.model, pooled, scored)
            figures = FleetEvaluation.from_series(list(evaluations), list(evaluations.values()))
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "median_mase": figures.model.median,
                    "pooled_mase": figures.model.pooled,
                    "best_baseline_median": figures.best_baseline.median,
                    "wins": figures.wins,
                    "series": len(figures.series),
                    "params": result.params,
                    "seconds": time.perf_counter() - started,
                }
            )
            with log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(rows[-1]) + "\n")
    return rows


def main(argv: list[str]) -> int:
    """Run both data sets, write the table."""
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    names = ("stations (4, real)", f"generated ({args.series})")
    logs = {name: args.work / f"rows-{i}.jsonl" for i, name in enumerate(names)}
    if not args.collect_only:
        generated = args.work / f"fleet-{args.series}.csv"
        make_fleet(args.series, 2000, seed=1).to_csv(generated, index=False)
        sets = {
            names[0]: load_fleet(STATIONS, DataConfig(targets=("temp_c",), id_col="station")),
            names[1]: load_fleet(generated, DataConfig(targets=("value",), id_col="sensor")),
        }
        for name, fleet in sets.items():
            logs[name].unlink(missing_ok=True)
            measure(fleet, seeds, args.epochs, logs[name])
    table = Table(
        ["data", "variant", "median MASE", "pooled MASE", "wins", "best baseline median"],
        title=f"Global GRU(32), window 48, horizon 12, {args.epochs} epochs at most; mean "
        f"(spread) over seeds {args.seeds}",
    )
    raw: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        rows = [json.loads(line) for line in logs[name].read_text().splitlines()]
        raw[name] = rows
        for variant in dict.fromkeys(r["variant"] for r in rows):
            picked = [r for r in rows if r["variant"] == variant]
            medians = [r["median_mase"] for r in picked]
            table.add(
                name,
                variant,
                f"{mean(medians):.3f} ({pstdev(medians):.3f})",
                f"{mean(r['pooled_mase'] for r in picked):.3f}",
                f"{mean(r['wins'] for r in picked):.1f} of {picked[0]['series']}",
                picked[0]["best_baseline_median"],
            )
    result = Section("fleet_id", "A global model with and without the series id as an input")
    result.tables.append(table)
    result.notes.append(
        "Both variants: the same pooled windows (each series scaled on its own training "
        "part), seasonal lags, seeds and epochs; scored per series on its test origins beside "
        "its own baselines (MASE, lower is better). 'values + series id' appends the series' "
        "one-hot vector to every step of its windows."
    )
    result.data = {"rows": raw, "machine": machine.describe(), "date": time.strftime("%Y-%m-%d")}
    text = section_markdown(1, result)
    (args.out / "fleet_id.md").write_text(text)
    (args.out / "fleet_id.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
