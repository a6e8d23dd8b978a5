"""`python -m bench.tuning`: the default `forecaster tune` on 20k rows, and a 3x larger search.

Runs `forecaster tune` with its defaults on a generated 20,000-row, 3-channel CSV (wall time and
peak RSS), then a random search given three times the default time budget on the same file,
and compares the validation loss of the two winners (retrained, same validation windows);
then trains the larger search's winner with one layer, to see whether a cheaper model is as good.
Writes bench/tuning.md and .json; `python -m bench` copies the table into bench/results.md.
Takes about 3.5x the default budget, ~30 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import fixtures, machine
from bench.results import Section, Table, Target, section_markdown
from bench.timing import Measured, forecaster_command, run_measured
from forecaster.tune.config import DEFAULT_TUNE_BUDGET, format_duration, parse_duration

HERE = Path(__file__).resolve().parent
ROWS = 20_000
LARGER = 3  # the comparison search gets this many times the default budget
WALL_TARGET_S = 600.0
PROBE = "one_layer"
PROBE_EPOCHS = 30
LOSS_MARGIN = 0.05


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.tuning", description=__doc__)
    parser.add_argument("--work", type=Path, default=HERE / "out" / "tuning", help="search dirs")
    parser.add_argument("--out", type=Path, default=HERE, help="results directory")
    parser.add_argument(
        "--collect-only", action="store_true", help="tabulate searches already in --work"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of both searches (default: tune's own)"
    )
    parser.add_argument(
        "--probe-only", action="store_true", help="rerun only the one-layer probe, then tabulate"
    )
    return parser.parse_args(argv)


def searches() -> dict[str, list[str]]:
    """Name -> the options each search adds to `forecaster tune CSV --target T --out DIR`."""
    larger = format_duration(parse_duration(DEFAULT_TUNE_BUDGET) * LARGER)
    return {"default": [], "random_3x": ["--tuner", "random", "--budget", larger]}


def _run_forecaster(
    what: str,
    subcommand: str,
    csv: Path,
    out: Path,
    options: list[str],
    *,
    timeout_s: float,
    measure_rss: bool = False,
) -> Measured:
    """`forecaster SUBCOMMAND CSV --target T --out OUT --overwrite OPTIONS`, run beside OUT;
    the benchmark stops if it fails."""
    command = [
        *forecaster_command(),
        subcommand,
        str(csv),
        "--target",
        fixtures.TARGET,
        "--out",
        str(out),
        "--overwrite",
        *options,
    ]
    print(f"== {what}: forecaster {subcommand} {' '.join(options)}", file=sys.stderr, flush=True)
    done = run_measured(command, timeout_s=timeout_s, cwd=out.parent, measure_rss=measure_rss)
    if not done.ok:
        raise SystemExit(f"{what} failed: {done.failure()}")
    return done


def run_search(name: str, options: list[str], csv: Path, work: Path) -> dict[str, Any]:
    """One `forecaster tune`, measured; its wall time and peak RSS."""
    done = _run_forecaster(
        f"{name} search", "tune", csv, work / name, options, timeout_s=4 * 3600, measure_rss=True
    )
    measured = {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb}
    (work / f"{name}.measured.json").write_text(json.dumps(measured) + "\n")
    return measured


def run_probe(csv: Path, work: Path) -> None:
    """Train the larger search's winning settings with one layer: is a cheap model as good?"""
    report = json.loads((work / "random_3x" / "comparison.json").read_text())
    values = report["cells"][report["winner"]]["hyperparameters"]
    options = {
        "--cell": values["cell"],
        "--units": values["units"],
        "--layers": 1,
        "--window": values["window"],
        "--dropout": values["dropout"],
        "--lr": values["learning_rate"],
        "--residual": values["residual"],
        "--normalize": values["normalize"],
        "--epochs": PROBE_EPOCHS,
        "--patience": 5,
    }
    _run_forecaster(
        "one-layer probe",
        "train",
        csv,
        work / PROBE,
        [text for pair in options.items() for text in map(str, pair)],
        timeout_s=3600,
    )


def collect_probe(work: Path) -> dict[str, Any] | None:
    """The probe's training: epochs, seconds and best validation loss; None if not run."""
    path = work / PROBE / "bundle.json"
    if not path.exists():
        return None
    bundle = json.loads(path.read_text())
    training, model = bundle["training"], bundle["model"]
    return {
        "cell": model["cell"],
        "units": model["units"],
        "params": model["params"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "seconds": training["seconds"],
        "val_loss": training["best_val_loss"],
    }


def read_trials(search: Path) -> dict[str, list[dict[str, Any]]]:
    """Each cell's Keras Tuner trial records in trial order; the first is the starting point."""
    return {
        cell.name: sorted(
            (json.loads(path.read_text()) for path in cell.glob("trial_*/trial.json")),
            key=lambda trial: trial["trial_id"],
        )
        for cell in sorted(search.joinpath("tuner").iterdir())
        if cell.is_dir()
    }


def collect(name: str, work: Path) -> dict[str, Any]:
    """What a finished search found: trials, the winner and its validation loss."""
    report = json.loads((work / name / "comparison.json").read_text())
    measured = json.loads((work / f"{name}.measured.json").read_text())
    winner = report["cells"][report["winner"]]
    search = report["search"]
    trials = read_trials(work / name)
    cell_trials = trials[report["winner"]]
    trial = next(t for t in cell_trials if t["trial_id"] == winner["trial_id"])
    observations = trial["metrics"]["metrics"]["val_loss"]["observations"]
    every = [t for cell in trials.values() for t in cell]
    drawn = [t["score"] for cell in trials.values() for t in cell[1:] if t["score"] is not None]
    return {
        "name": name,
        "tuner": search["tuner"],
        "budget_s": search["time_budget_seconds"],
        "search_s": search["search_seconds"],
        "trials": search["trials"],
        "winner": report["winner"],
        "winner_values": winner["hyperparameters"],
        "search_val_loss": winner["search_val_loss"],
        "val_loss": winner["val_loss"],
        "test_mase": winner["test"]["mase"],
        "epochs_run": winner["epochs_run"],
        "trial_best_epoch": int(observations[-1]["step"]) + 1,
        "layers_drawn": sorted({t["hyperparameters"]["values"]["layers"] for t in every}),
        "seconds_per_epoch": winner["seconds_per_epoch"],
        "winner_is_start": trial is cell_trials[0],
        "best_draw": float(min(drawn)) if drawn else None,  # of trials other than the start
        **measured,
    }


def section(rows: dict[str, dict[str, Any]], probe: dict[str, Any] | None) -> Section:
    """The two searches side by side and the issue's two targets."""
    table = Table(
        [
            "search",
            "time budget",
            "wall time",
            "peak RSS MB",
            "trials (GRU+LSTM)",
            "winner",
            "best trial val loss",
            "winner val loss (retrained)",
            "winner test MASE",
        ],
        title=f"`forecaster tune` on {ROWS:,} rows x 3 channels (generated, hourly)",
    )
    labels = {"default": "default (Hyperband)", "random_3x": f"random, {LARGER}x the budget"}
    for name, row in rows.items():
        table.add(
            labels[name],
            format_duration(row["budget_s"]) if row["budget_s"] else "none",
            format_duration(row["seconds"]),
            row["peak_rss_mb"],
            sum(row["trials"].values()),
            row["winner"].upper(),
            row["search_val_loss"],
            row["val_loss"],
            row["test_mase"],
        )
    result = Section("tuning", "Tuning", tables=[table])
    default, larger = rows["default"], rows["random_3x"]
    gap = default["val_loss"] / larger["val_loss"] - 1
    result.targets = [
        Target(
            "default tune wall time",
            f"< {WALL_TARGET_S / 60:.0f} min on 2 cores",
            f"{format_duration(default['seconds'])}",
            default["seconds"] < WALL_TARGET_S,
        ),
        Target(
            f"default winner vs a {LARGER}x larger random search",
            f"validation loss within {LOSS_MARGIN:.0%}",
            f"{default['val_loss']:.5g} vs {larger['val_loss']:.5g} ({gap:+.1%})",
            gap <= LOSS_MARGIN,
        ),
    ]
    epochs = larger["trial_best_epoch"] + larger["epochs_run"]
    result.notes = [
        f"`forecaster tune` stops starting trials after 3/4 of --budget (default "
        f"{DEFAULT_TUNE_BUDGET}) and retrains the best model of each cell in the rest, going on "
        "from that trial's best epoch; a trial or retraining stops before an epoch that would "
        "end after its deadline. Each cell's first trial is `forecaster train`'s recipe moved "
        "into the space, trained for up to 30 epochs (also under Hyperband); then the tuner's "
        "own draws.",
        f"The larger search: Keras Tuner's random search (trials of up to 30 epochs with early "
        f"stopping, as many as fit) with {LARGER}x the default time budget, same data, space "
        "and seed. Validation loss is the MAE of the scaled target over the same validation "
        "windows, of the retrained winner.",
        "Where each winner came from: "
        + "; ".join(
            f"{name}: {'the starting point' if row['winner_is_start'] else 'a drawn trial'} "
            + (
                f"(best drawn trial's validation loss {row['best_draw']:.5g})"
                if row["best_draw"] is not None
                else "(no drawn trial finished)"
            )
            for name, row in rows.items()
        )
        + ".",
        "Winners: "
        + "; ".join(
            f"{name}: {row['winner'].upper()} "
            + ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in row["winner_values"].items()
                if k != "cell"
            )
            + f" (best trial epoch {row['trial_best_epoch']}, then {row['epochs_run']} "
            f"retraining epoch(s) at {row['seconds_per_epoch']:.1f} s)"
            for name, row in rows.items()
        ),
        "One run each on a 2-core machine; a single seed, so the gap is not a confidence interval.",
    ]
    if gap > LOSS_MARGIN:
        result.notes.append(
            "Why the default falls short: the larger search's winner reached its loss after "
            f"{epochs} epochs of {larger['seconds_per_epoch']:.1f} s, "
            f"{epochs * larger['seconds_per_epoch'] / 60:.1f} min of training for that one "
            "model, while the default's 10 minutes on 2 cores must cover searching and training "
            "both cells; it can match only by finding a model that learns as much for far less "
            "compute."
        )
    if probe is not None and larger["winner_values"]["layers"] > 1:
        result.notes.append(
            f"A cheaper model is in the space: the larger search's winning settings with one "
            f"layer ({probe['cell'].upper()}({probe['units']}), {probe['params']:,} parameters, "
            f"`forecaster train`, {probe['epochs_run']} epochs) reach validation loss "
            f"{probe['val_loss']:.5g} ({probe['val_loss'] / larger['val_loss'] - 1:+.1%} vs "
            f"the larger search) in {probe['seconds'] / 60:.1f} min. Layers the searches drew: "
            f"{default['layers_drawn']} and {larger['layers_drawn']}; the default's two-epoch "
            "Hyperband trials rank slow starters low."
            + (
                " Where the probe is as good, the miss is the search's, not the hardware's."
                if gap > LOSS_MARGIN
                else ""
            )
        )
    result.data = {
        "rows": rows,
        "machine": machine.describe(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return result


def main(argv: list[str]) -> int:
    """Run both searches and the probe (unless --collect-only), write the table."""
    args = parse_args(argv)
    args.work = args.work.resolve()  # the searches run with --work as their directory
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.collect_only:
        from forecaster.data.synthetic import make_series, write_csv

        csv = write_csv(make_series(rows=ROWS, seed=fixtures.SEED), args.work / "tune.csv")
        if not args.probe_only:
            seed = [] if args.seed is None else ["--seed", str(args.seed)]
            for name, options in searches().items():
                run_search(name, [*options, *seed], csv, args.work)
        run_probe(csv, args.work)
    rows = {name: collect(name, args.work) for name in searches()}
    result = section(rows, collect_probe(args.work))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tuning.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    (args.out / "tuning.md").write_text(section_markdown(1, result))
    print(section_markdown(1, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
