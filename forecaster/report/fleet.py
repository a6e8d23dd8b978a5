"""The fleet section of a report: per-series MASE as a picture, its spread per method, the worst.

`forecaster run` adds it to its report when the run is over a fleet; `forecaster train` writes
it alone as fleet.md beside fleet_metrics.json.
"""

from __future__ import annotations

from pathlib import Path

from forecaster.evaluation.fleet import BEST_BASELINE, FleetEvaluation, Spread
from forecaster.evaluation.rolling import TIE
from forecaster.files import write_text_atomic
from forecaster.layout import FLEET_MASE_PNG, FLEET_METRICS, FLEET_REPORT_MD
from forecaster.report.document import Heading, Image, Paragraph, Report, TableBlock

# Series listed by name in the worst-series table; the rest are in fleet_metrics.json.
WORST_LISTED = 5


def fleet_section(report: Report, fleet: FleetEvaluation, picture: Path | None = None) -> None:
    """Add the fleet's verdict, picture, spread per method, wins, worst series and coverage."""
    n = len(fleet.series)
    lead = fleet.leading_baseline
    report.add(Heading(f"Across the fleet: {n} series, each scored on its own test part"))
    report.add(Paragraph(f"Verdict: {fleet.verdict()}.", note=fleet.ratio >= 1.0 - TIE))
    if picture is not None and picture.exists():
        caption = "Per-series MASE of every method; the model's ratio to each series' best baseline"
        report.add(Image(picture, caption))
    report.add(
        Paragraph(
            "Each series is scored like a one-series run: every method on the same origins, in "
            "that series' units, MASE scaled by its own training part's seasonal naive error, "
            "so MASE compares across series. The table gives each method's per-series MASE: "
            "quartiles, the mean (every series counts once) and the pooled figure (scaled "
            "errors over every origin of every series, so a series counts by its origins). "
            f"'Best baseline' is each series' own best. Within {TIE:.0%} of it is a tie."
        )
    )
    report.add(
        TableBlock(
            ["method", "series", "median", "Q1", "Q3", "mean", "pooled", "best on"],
            [
                [
                    fleet.label(m),
                    str(s.series),
                    f"{s.median:.3f}",
                    f"{s.q1:.3f}",
                    f"{s.q3:.3f}",
                    f"{s.mean:.3f}",
                    f"{s.pooled:.3f}",
                    str(s.best_on),
                ]
                for m, s in _spreads(fleet)
            ],
            0,
        )
    )
    report.add(
        Paragraph(
            f"The model beats its series' best baseline on {fleet.wins} of {n} series "
            f"({fleet.win_share:.0%}), ties on {fleet.ties} and loses on {fleet.losses}. "
            f"Highest model MASE: {fleet.worst_mase.describe()}. Largest loss to a "
            f"baseline: {fleet.worst_ratio.describe()}. The model's MAE over every origin of "
            f"every series is {fleet.pooled_mae['model']:.4g}; that of {fleet.label(lead)}, the "
            f"baseline with the lowest median MASE, is {fleet.pooled_mae[lead]:.4g}. It means "
            "something only when all the series measure the same quantity in the same units."
        )
    )
    shown = min(WORST_LISTED, n)
    report.add(
        Paragraph(f"The {shown} series where the model does worst against its best baseline:")
    )
    report.add(
        TableBlock(
            ["series", "model MASE", "best baseline", "its MASE", "model / it", "model MAE"],
            [
                [
                    s.id,
                    f"{s.mase['model']:.3f}",
                    fleet.label(s.best_baseline),
                    f"{s.best_baseline_mase:.3f}",
                    f"{s.ratio:.2f}",
                    f"{s.mae['model']:.4g}",
                ]
                for s in fleet.ranked(WORST_LISTED)
            ],
        )
    )
    _coverage(report, fleet)
    if fleet.unscored:
        report.add(Paragraph(f"Not scored, no test origin: {_ids(fleet.unscored)}.", note=True))


def _spreads(fleet: FleetEvaluation) -> list[tuple[str, Spread]]:
    order = ["model", BEST_BASELINE, *(m for m in fleet.methods if m != "model")]
    return [(m, fleet.spreads[m]) for m in order if m in fleet.spreads]


def _coverage(report: Report, fleet: FleetEvaluation) -> None:
    if not fleet.coverage:
        return
    rows = []
    for method, levels in fleet.coverage.items():
        for i, c in enumerate(levels):
            rows.append(
                [
                    fleet.label(method) if i == 0 else "",
                    f"{c.name}%",
                    f"{c.coverage:.1%}",
                    f"{c.lowest:.1%} ('{c.lowest_series}')",
                ]
            )
    report.add(
        Paragraph(
            "Interval coverage pooled over the series: the share of all the fleet's test "
            "truths inside each interval (widths and Winkler scores are in each series' own "
            "units and stay in its evaluation)."
        )
    )
    report.add(TableBlock(["method", "nominal", "covered", "lowest series"], rows))


def _ids(ids: tuple[str, ...], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(f"'{i}'" for i in ids[:shown]) + more


def add_fleet_section(report: Report, run_dir: Path) -> bool:
    """The fleet section from a run directory's fleet_metrics.json, if it has one."""
    if not (run_dir / FLEET_METRICS).exists():
        return False
    fleet_section(report, FleetEvaluation.read(run_dir), run_dir / FLEET_MASE_PNG)
    return True


def write_fleet_report(run_dir: Path, fleet: FleetEvaluation) -> Path:
    """Write fleet_metrics.json, the per-series MASE picture and fleet.md into `run_dir`."""
    from forecaster.report.plots import plot_fleet_mase

    fleet.write(run_dir)
    picture = plot_fleet_mase(fleet, run_dir / FLEET_MASE_PNG)
    report = Report(f"Fleet evaluation: {len(fleet.series)} series")
    fleet_section(report, fleet, picture)
    path = run_dir / FLEET_REPORT_MD
    write_text_atomic(path, report.markdown(run_dir))
    return path
