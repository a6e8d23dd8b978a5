"""What the commands print: results as rich tables on stdout, warnings on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from forecaster.config import WindowConfig
    from forecaster.data.inspect import FleetSummary, SeriesSummary
    from forecaster.device.summary import BundleSummary
    from forecaster.evaluation.fleet import FleetEvaluation
    from forecaster.evaluation.rolling import Evaluation
    from forecaster.export.gate import ModeResult
    from forecaster.export.ship import ExportOutcome
    from forecaster.runs.fleet import FleetRunOutcome
    from forecaster.tune.comparison import Comparison

console = Console()
err_console = Console(stderr=True)


def say(text: str) -> None:
    """One line of plain text on stdout, printed as is (no markup, no highlighting)."""
    console.print(text, markup=False, highlight=False)


def note(text: str) -> None:
    """One line of plain text on stderr, wrapped by the terminal rather than by rich."""
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def warn(messages: list[str]) -> None:
    """Each message as a `Warning: ...` line on stderr."""
    for message in messages:
        note(f"Warning: {message}")


def data_summary(file: Path, summary: dict[str, Any], max_gap: int) -> None:
    """`data inspect`: the overview, the columns and the gaps with their handling."""
    overview = Table(title=f"{file}", show_header=False, title_justify="left")
    overview.add_column("", style="bold")
    overview.add_column("")
    for key, value in summary["overview"].items():
        overview.add_row(key, str(value))
    console.print(overview)

    columns = Table(title="Columns", title_justify="left")
    for name in ("column", "role", "dtype", "min", "max", "mean", "NaN in file"):
        columns.add_column(name, justify="right" if name in ("min", "max", "mean") else "left")
    for row in summary["columns"]:
        columns.add_row(*(str(v) for v in row.values()))
    console.print(columns)

    seasons = summary.get("seasons", [])
    if seasons:
        table = Table(title="Seasons (checked on the training part)", title_justify="left")
        for name in ("season", "kept", "why"):
            table.add_column(name)
        for row in seasons:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)

    gaps = summary["gaps"]
    if gaps:
        table = Table(title=f"Gaps (max gap {max_gap} steps)", title_justify="left")
        for name in gaps[0]:
            table.add_column(name)
        for row in gaps:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    else:
        console.print("No gaps or missing values.")


def data_plan(
    parts: list[dict[str, Any]],
    *,
    split: str,
    window: int,
    horizon: int,
    seasons: str,
    next_command: str,
    choose_from: tuple[str, ...] = (),
) -> None:
    """`data inspect`: what training would do with the file, and the command to run next."""
    table = Table(
        title=f"Split {split}, windows of {window} steps + {horizon} to forecast",
        title_justify="left",
    )
    for name in ("part", "rows", "first", "last", "windows"):
        table.add_column(name, justify="right" if name in ("rows", "windows") else "left")
    for row in parts:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    test = parts[-1]["windows"]
    say(f"Seasons used: {seasons}" + (" (the first sets MASE's scale)" if "," in seasons else ""))
    say(
        f"Test origins: {test} (each forecast {horizon} steps from the {window} before it)"
        if test
        else f"Test origins: 0: the test part has no {window + horizon} rows without a long "
        "gap; pass a smaller --window or --horizon, or a larger test part in --split"
    )
    next_step(next_command, choose_from)


def next_step(command: str, choose_from: tuple[str, ...] = ()) -> None:
    """The command to run next, and the columns COLUMN in it can be."""
    # One line, however long, so it can be copied.
    console.print(f"Next: {command}", markup=False, highlight=False, soft_wrap=True)
    if choose_from:
        say(f"COLUMN: the column to forecast, one of {', '.join(choose_from)}")


def fleet_summary(summary: FleetSummary, show: int, *, split: str, windows: WindowConfig) -> None:
    """`data inspect --id-col`: what the series have in common, then a row per series."""
    count = len(summary.series)
    overview = Table(title=f"{summary.path}", show_header=False, title_justify="left")
    overview.add_column("", style="bold")
    overview.add_column("")
    shortest = summary.shortest
    others = summary.other_steps
    differ = f"{len(others)} series {_agree(len(others), 'differs', 'differ')}: {_ids(others)}"
    rows = {
        "id column": summary.id_col,
        "series": f"{count:,}",
        "columns": ", ".join(summary.features),
        "rows on time grids": f"{summary.rows:,}",
        "step": f"{summary.step} ({differ if others else 'every series'})",
        "series with gaps": f"{len(summary.with_gaps)}" + _listed(summary.with_gaps),
        "series with duplicates merged": str(sum(1 for s in summary.series if s.duplicates)),
        "shortest series": f"{shortest.id} ({shortest.rows:,} "
        f"{_agree(shortest.rows, 'row', 'rows')})",
        "too short to train on": f"{len(summary.too_short)}" + _listed(summary.too_short),
    }
    for key, value in rows.items():
        overview.add_row(key, value)
    console.print(overview)

    listed = summary.series if count <= show else summary.worst(show)
    which = f"all {count}, in file order" if count <= show else f"the {show} worst of {count:,}"
    table = Table(
        title=f"Series ({which})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        caption=None
        if count <= show
        else f"... and {count - show:,} more (too short, cut by long gaps, then most missing "
        f"first); pass --show {count} to list them all",
        caption_justify="left",
    )
    # The step is the overview's; a series with another one says so in its notes.
    for name in ("series", "rows", "first", "span", "missing", "gaps", "dups", "NaN"):
        left = name in ("series", "first")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)
    table.add_column("notes", min_width=9)
    for s in listed:
        table.add_row(
            s.id,
            f"{s.rows:,}",
            s.first,
            s.span,
            str(s.missing),
            str(s.gaps),
            str(s.duplicates),
            str(s.nans),
            s.notes(summary.step),
            style="bold" if s.too_short else None,
        )
    console.print(table)
    if summary.too_short:
        say(
            f"Too short to train on: {len(summary.too_short)} series "
            f"{_agree(len(summary.too_short), 'has', 'have')} a part of split {split} "
            f"without one window of {windows.window} + {windows.horizon} rows; training skips "
            "them (a smaller --window or --horizon keeps more)"
        )


def _ids(series: tuple[SeriesSummary, ...], most: int = 5) -> str:
    """The first few ids of `series`, and how many more."""
    names = ", ".join(s.id for s in series[:most])
    return names + (f" and {len(series) - most:,} more" if len(series) > most else "")


def _agree(count: int, one: str, more: str) -> str:
    """The word that agrees with `count`: 'row' or 'rows', 'has' or 'have'."""
    return one if count == 1 else more


def _listed(series: tuple[SeriesSummary, ...]) -> str:
    return f": {_ids(series)}" if series else ""


def evaluation(result: Evaluation, title: str) -> None:
    """The model's and the baselines' scores, then the verdict (a warning goes to stderr)."""
    seasons = ", ".join(str(s) for s in result.seasons or (result.season,))
    table = Table(
        title=f"{title}: {len(result.origins)} origins, horizon {result.truth.shape[1]}, "
        f"seasons {seasons}",
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for name in ("MAE", "RMSE", "sMAPE%", "MASE", "MASE@1", "model/it"):
        table.add_column(name, justify="right", no_wrap=True)
    for method, scores in result.scores.items():
        ratio = "" if method == "model" else f"{result.skill(method):.2f}"
        table.add_row(
            result.label(method),
            f"{scores['mae']:.4g}",
            f"{scores['rmse']:.4g}",
            f"{scores['smape']:.2f}",
            f"{scores['mase']:.3f}",
            f"{scores['per_step']['mase'][0][0]:.3f}",
            ratio,
            style="bold" if method == "model" else None,
        )
    console.print(table)
    if result.intervals:
        intervals(result)
    verdict = result.verdict()
    if verdict.startswith("WARNING"):
        err_console.print(verdict, style="yellow", markup=False, highlight=False, soft_wrap=True)
    else:
        say(verdict)
    if result.skipped:
        console.print(f"{result.skipped} origin(s) skipped: a baseline's input was in a gap")


def fleet(result: FleetEvaluation, title: str = "Test part") -> None:
    """Per-series MASE of each method over the fleet, the worst series, then the verdict."""
    from forecaster.evaluation.fleet import BEST_BASELINE

    n = len(result.series)
    table = Table(
        title=f"{title}: MASE of {n} series, each scaled by its own training part",
        title_justify="left",
        caption="best on: series where the method has the lowest MASE",
        caption_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for name in ("median", "Q1", "Q3", "mean", "best on"):
        table.add_column(name, justify="right", no_wrap=True)
    for method in ("model", BEST_BASELINE, *(m for m in result.methods if m != "model")):
        spread = result.spreads[method]
        # A baseline that sat out on some series (too short for it) says on how many it ran.
        some = f" ({spread.series} series)" if spread.series < n else ""
        table.add_row(
            result.label(method) + some,
            f"{spread.median:.3f}",
            f"{spread.q1:.3f}",
            f"{spread.q3:.3f}",
            f"{spread.mean:.3f}",
            str(spread.best_on),
            style="bold" if method == "model" else None,
        )
    console.print(table)
    say(f"Highest model MASE: {result.worst_mase.describe()}")
    say(f"Largest loss to a baseline: {result.worst_ratio.describe()}")
    for method, levels in result.coverage.items():
        covered = ", ".join(f"{c.coverage:.1%} of {c.name}%" for c in levels)
        if method == "model":
            say(f"Model intervals pooled over the series cover {covered}")
        if method == "model_adapting":
            say(f"... adapting to recent errors as predict does, {covered}")
    if result.unscored:
        more = ", ..." if len(result.unscored) > 10 else ""
        note(
            f"{len(result.unscored)} series not scored (no test origin): "
            + ", ".join(result.unscored[:10])
            + more
        )
    verdict = result.verdict()
    if verdict.startswith("WARNING"):
        err_console.print(verdict, style="yellow", markup=False, highlight=False, soft_wrap=True)
    else:
        say(verdict)


def intervals(result: Evaluation) -> None:
    """Coverage, mean width and Winkler score per level: the model's and each baseline's."""
    table = Table(
        title=f"Prediction intervals on the {len(result.origins)} origins (Winkler: width plus "
        "the misses' penalty, lower is better)",
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for name in ("level", "covered", "width", "Winkler"):
        table.add_column(name, justify="right", no_wrap=True)
    for method, scores in result.intervals.items():
        for i, score in enumerate(scores):
            table.add_row(
                result.label(method) if i == 0 else "",
                f"{score.name}%",
                f"{score.coverage:.1%}",
                f"{score.width:.4g}",
                f"{score.winkler:.4g}",
                style="bold" if method == "model" else None,
            )
    console.print(table)


def comparison(result: Comparison) -> None:
    """The best model of each cell side by side: scores, sizes, times and hyperparameters."""
    from forecaster.tune.comparison import ROWS, formatted
    from forecaster.tune.space import format_hyperparameter

    cells = result.cells
    table = Table(title="Best model per cell, retrained", title_justify="left")
    table.add_column("", no_wrap=True)
    for cell in cells:
        table.add_column(cell.upper(), justify="right", no_wrap=True)
    for label, path, spec in ROWS:
        table.add_row(label, *(formatted(c, path, spec) for c in cells.values()))
    for key in next(iter(cells.values())).hyperparameters:
        if key != "cell":
            values = (format_hyperparameter(c.hyperparameters[key]) for c in cells.values())
            table.add_row(key, *values)
    console.print(table)


def export_results(outcome: ExportOutcome) -> None:
    """Every quantization mode's size, error, MAE and latency, and the one shipped."""
    fleet = outcome.bundle.fleet
    units = f"; MAE in MASE units, over {len(fleet.series)} series" if fleet is not None else ""
    table = Table(
        title=f"LiteRT on the test windows (Keras MAE {outcome.keras_mae:.4g}{units})",
        title_justify="left",
        caption="worst: the largest forecast change against Keras, as a share of Keras' own "
        "test MAE (over 100% is refused)",
        caption_justify="left",
    )
    for name in ("mode", "bytes", "÷f32", "worst", "MAE", "ΔMAE", "ms/win", ""):
        table.add_column(name, justify="left" if name in ("mode", "") else "right", no_wrap=True)
    for r in outcome.results:
        if r.error:
            table.add_row(r.mode, "", "", "", "", "", "", f"failed: {r.error}")
            continue
        verdict = "shipped" if r.mode == outcome.shipped else ("ok" if r.passed else "refused")
        table.add_row(
            r.mode,
            f"{r.size_bytes:,}",
            f"{r.ratio_to_float32:.0%}" if r.ratio_to_float32 else "",
            _worst_share(r),
            f"{r.mae:.4g}",
            f"{r.mae_change:+.2%}",
            f"{r.latency_ms:.3f}",
            verdict,
            style="bold" if verdict == "shipped" else None,
        )
    console.print(table)
    say(f"Shipped {outcome.shipped}: {outcome.reason}")
    console.print(f"Bundle written to {outcome.bundle_dir}")


def _worst_share(result: ModeResult) -> str:
    """The worst target's largest change against Keras over its bound, as a percentage."""
    shares = [w / b for w, b in zip(result.worst_vs_keras, result.worst_bound, strict=True) if b]
    return f"{max(shares):.0%}" if shares else ""


def bundle_summary(title: str, summary: BundleSummary) -> None:
    """`inspect`: the bundle's summary as a two-column table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in summary.rows().items():
        table.add_row(key, value)
    console.print(table)


def bench_results(result: dict[str, Any]) -> None:
    """Latency and throughput per batch size, then the peak memory."""
    table = Table(
        title=f"{result['quantization']} on {result['processor']}, {result['threads']} thread(s)",
        title_justify="left",
    )
    for name in ("batch", "p50 ms", "p95 ms", "windows/s"):
        table.add_column(name, justify="right")
    for row in result["results"]:
        table.add_row(
            str(row["batch"]),
            f"{row['p50_ms']:.3f}",
            f"{row['p95_ms']:.3f}",
            f"{row['windows_per_s']:,.0f}",
        )
    console.print(table)
    console.print(f"peak RSS {result['peak_rss_mb']:.0f} MiB")


def fleet_training(outcome: FleetRunOutcome) -> None:
    """How a global model's training went, then the fleet's scores."""
    result = outcome.result
    console.print(
        f"Trained one {outcome.bundle.model.cell.upper()} ({result.params:,} parameters) on "
        f"{len(outcome.evaluations)} series: {result.epochs_run} epochs in "
        f"{result.seconds:.1f} s, best epoch {result.best_epoch} "
        f"(val loss {result.best_val_loss:.5f})"
    )
    for skipped in outcome.skipped:
        err_console.print(
            f"skipped series '{skipped.id}': {skipped.reason}",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    fleet(outcome.figures)
    console.print(f"Run written to {outcome.run_dir}")
