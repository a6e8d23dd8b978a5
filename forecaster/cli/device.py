"""`forecaster export`, `predict`, `inspect` and `bench`: the bundle shipped to a device, there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    EXPORT,
    BundleArg,
    MaxAccuracyLossOpt,
    OverwriteOpt,
    QuantizeOpt,
    RunDirArg,
    RuntimeOpt,
    ThreadsOpt,
    at_least,
    out_option,
    parse_max_accuracy_loss,
)
from forecaster.cli.progress import predict_progress
from forecaster.config import DEFAULT_ADAPT, PredictMode, UnknownPolicy

DEFAULT_LEVEL = "80,95"


def export(
    run_dir: RunDirArg,
    quantize: QuantizeOpt = "all",
    runtime: RuntimeOpt = "litert",
    max_accuracy_loss: MaxAccuracyLossOpt = "2%",
    force: Annotated[
        bool,
        typer.Option(
            "--force", rich_help_panel=EXPORT, help="Export the asked mode even if it fails."
        ),
    ] = False,
    out: Annotated[Path | None, out_option("Bundle directory (default: RUN_DIR/bundle).")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert a run to LiteRT, measure each quantization mode, write the bundle to ship.

    Writes OUT (default RUN_DIR/bundle/) with model.tflite and bundle.json, ready for a device.

    With --runtime micro: one full-integer batch-1 file for TensorFlow Lite Micro, checked in
    its interpreter, and the tensor arena it needs.

    Example:

        forecaster export models/weather_greensboro-gru-20261123-120000
    """
    from forecaster.export.ship import export as export_run

    with render.err_console.status("exporting") as status:
        outcome = export_run(
            run_dir,
            quantize=quantize,
            runtime=runtime,
            out=out,
            max_accuracy_loss=parse_max_accuracy_loss(max_accuracy_loss),
            force=force,
            overwrite=overwrite,
            on_stage=status.update,
        )
    render.export_results(outcome)


def predict(
    bundle: BundleArg,
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="CSV file(s) with the training columns."),
    ],
    mode: Annotated[
        PredictMode,
        typer.Option(
            metavar="MODE", help="last: the steps after each file's end; rolling: every origin."
        ),
    ] = "last",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Output CSV (default: standard output)."),
    ] = None,
    chunk_rows: Annotated[
        int,
        typer.Option(
            "--chunk-rows",
            metavar="N",
            callback=at_least(1),
            help="Rows read at a time (bounds memory).",
        ),
    ] = 20_000,
    threads: ThreadsOpt = None,
    level: Annotated[
        str,
        typer.Option(
            metavar="PERCENTS",
            help="Prediction intervals, e.g. 80,95 (of 50, 80, 90, 95, 99), or none.",
        ),
    ] = DEFAULT_LEVEL,
    adapt: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(0),
            help="Intervals from the file's last N errors per step (0: the bundle's own).",
            show_default=str(DEFAULT_ADAPT),
        ),
    ] = None,
    unknown: Annotated[
        UnknownPolicy,
        typer.Option(
            metavar="POLICY",
            help="A fleet bundle: error on a series id it was not trained on, or skip its rows.",
        ),
    ] = "error",
) -> None:
    """Forecast from CSV files with an exported bundle, with LiteRT only (no TensorFlow).

    Writes rows of origin, timestamp, step and one column per target, followed by its
    TARGET_lower_L and TARGET_upper_L for each --level L.

    A bundle trained on many series (--id-col) reads long files with that id column and
    writes it first: one forecast per series and origin.

    Example:

        forecaster predict models/demo/bundle data/weather_greensboro.csv
    """
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.errors import ConfigError
    from forecaster.intervals import parse_levels

    try:
        levels = parse_levels(level)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--level") from None
    predictor = Predictor.load(bundle, num_threads=threads)
    if not predictor.has_intervals and level == DEFAULT_LEVEL:
        # A bundle exported before intervals existed still predicts as it did.
        render.warn(
            [
                f"{bundle} has no prediction intervals (exported before forecaster had them): "
                "writing the point forecasts only; re-export it to get them"
            ]
        )
        levels = ()
    with predict_progress(files) as on_chunk:
        summary = predict_files(
            predictor,
            files,
            out,
            mode=mode,
            chunk_rows=chunk_rows,
            progress=on_chunk,
            levels=levels,
            adapt=adapt,
            unknown=unknown,
        )
    render.warn(summary.warnings)
    if out is not None:
        of_series = f" of {summary.series:,} series" if predictor.bundle.fleet else ""
        render.console.print(
            f"{summary.forecasts:,} forecast(s){of_series} of {predictor.horizon} steps from "
            f"{summary.rows:,} rows in {summary.files} file(s) written to {out}"
        )


def inspect(bundle: BundleArg) -> None:
    """Show an exported bundle: model, data, quantization, tensors, ops and metrics.

    Checks the bundle's checksums first, as predict does; LiteRT only, no TensorFlow.

    Example:

        forecaster inspect models/demo/bundle
    """
    from forecaster.device.summary import summarize_bundle

    render.bundle_summary(str(bundle), summarize_bundle(bundle))


def bench(
    bundle: BundleArg,
    threads: ThreadsOpt = None,
    seconds: Annotated[
        float,
        typer.Option(metavar="SECONDS", callback=at_least(0.05), help="Time spent per batch size."),
    ] = 1.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Also write JSON here.")
    ] = None,
) -> None:
    """Measure the bundle on this device: latency at batch 1, throughput, peak memory.

    Prints a table; --json also writes the numbers to a file.

    Example:

        forecaster bench models/demo/bundle --threads 1
    """
    import json

    from forecaster.device.bench import bench_predictor
    from forecaster.device.predictor import Predictor
    from forecaster.files import write_text_atomic

    result = bench_predictor(Predictor.load(bundle, num_threads=threads), seconds=seconds)
    render.bench_results(result)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
