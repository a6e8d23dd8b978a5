"""`forecaster export`, `predict`, `inspect` and `bench`: the bundle shipped to a device, there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    BundleArg,
    MaxAccuracyLossOpt,
    OverwriteOpt,
    RunDirArg,
    ThreadsOpt,
    parse_max_accuracy_loss,
)
from forecaster.cli.progress import predict_progress
from forecaster.config import PredictMode, Quantize


def export(
    run_dir: RunDirArg,
    quantize: Annotated[
        Quantize,
        typer.Option(help="none, dynamic, float16, int8, or all (ship the best that passes)."),
    ] = "all",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Bundle directory (default: RUN_DIR/bundle).")
    ] = None,
    max_accuracy_loss: MaxAccuracyLossOpt = "2%",
    force: Annotated[bool, typer.Option(help="Export the asked mode even if it fails.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert a run to LiteRT, measure each quantization mode, and write the bundle to ship.

    Example: forecaster export models/weather_greensboro-gru-20261123-120000 --quantize all
    """
    from forecaster.export.ship import export as export_run

    with render.err_console.status("exporting") as status:
        outcome = export_run(
            run_dir,
            quantize=quantize,
            out=out,
            max_accuracy_loss=parse_max_accuracy_loss(max_accuracy_loss),
            force=force,
            overwrite=overwrite,
            on_stage=status.update,
        )
    render.export_results(outcome)


def predict(
    bundle: Annotated[
        Path, typer.Argument(help="Bundle directory written by `forecaster export`.")
    ],
    files: Annotated[list[Path], typer.Argument(help="CSV file(s) with the training columns.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output CSV (default: standard output).")
    ] = None,
    mode: Annotated[
        PredictMode,
        typer.Option(help="last: the steps after each file's end; rolling: every origin."),
    ] = "last",
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read at a time (bounds memory).")
    ] = 20_000,
    threads: ThreadsOpt = None,
) -> None:
    """Forecast from CSV files with an exported bundle, using LiteRT only (no TensorFlow).

    Writes rows of origin, timestamp, step and one column per target.

    Example: forecaster predict models/weather/bundle data/weather_greensboro.csv --out preds.csv
    """
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor

    predictor = Predictor.load(bundle, num_threads=threads)
    with predict_progress(files) as on_chunk:
        summary = predict_files(
            predictor, files, out, mode=mode, chunk_rows=chunk_rows, progress=on_chunk
        )
    render.warn(summary.warnings)
    if out is not None:
        render.console.print(
            f"{summary.forecasts:,} forecast(s) of {predictor.horizon} steps from "
            f"{summary.rows:,} rows in {summary.files} file(s) written to {out}"
        )


def inspect(bundle: BundleArg) -> None:
    """Show an exported bundle: model, data, quantization, tensors, ops and metrics.

    Example: forecaster inspect models/weather_greensboro-gru-20261123-120000/bundle
    """
    from forecaster.device.summary import summarize_bundle

    render.bundle_summary(str(bundle), summarize_bundle(bundle))


def bench(
    bundle: BundleArg,
    threads: ThreadsOpt = None,
    seconds: Annotated[
        float, typer.Option(min=0.05, help="Seconds of calls per batch size.")
    ] = 1.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Measure the bundle on this device: latency at batch 1, throughput, peak memory.

    Example: forecaster bench models/weather_greensboro-gru-20261123-120000/bundle --threads 1
    """
    import json

    from forecaster.device.bench import bench_predictor
    from forecaster.device.predictor import Predictor
    from forecaster.files import write_text_atomic

    result = bench_predictor(Predictor.load(bundle, num_threads=threads), seconds=seconds)
    render.bench_results(result)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
