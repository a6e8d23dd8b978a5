"""`forecaster run` as a library job: every stage, the report in a real browser, resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from forecaster import WHEEL
from forecaster.config import DataConfig
from forecaster.errors import ConfigError, ExportError
from forecaster.job import JobOutcome, JobRequest, StageError, run_job

pytestmark = pytest.mark.slow


def tiny_job(csv: Path, out: Path, **kwargs) -> JobOutcome:
    from forecaster.tune.config import TuneConfig
    from forecaster.tune.space import SpaceOverrides

    request = JobRequest(
        csv,
        DataConfig(targets=("temp",)),
        horizon=6,
        space=SpaceOverrides.from_options(units="4:8", windows="24"),
        tune=TuneConfig(tuner="random", max_trials=1, max_epochs=2),
        out=out,
        command=f"forecaster run {csv} --target temp",
    )
    return run_job(request, **kwargs)


@pytest.fixture(scope="module")
def job(tmp_path_factory, csv_reads):
    from forecaster.data.synthetic import make_series, write_csv

    root = tmp_path_factory.mktemp("job")
    csv = write_csv(make_series(rows=500, seed=8), root / "sensors.csv")
    # Two rows swapped, as real exports have: training sorts them, the device check must too.
    lines = csv.read_text().splitlines(keepends=True)
    lines[100], lines[101] = lines[101], lines[100]
    csv.write_text("".join(lines))
    stage = ["before"]
    with pytest.MonkeyPatch.context() as patch:
        from forecaster.data import load

        read = load._read_raw

        def counted(path):
            csv_reads.append(stage[0])
            return read(path)

        patch.setattr(load, "_read_raw", counted)
        outcome = tiny_job(csv, root / "run", on_stage=lambda name, _: stage.__setitem__(0, name))
    return csv, outcome


@pytest.fixture(scope="module")
def csv_reads() -> list[str]:
    """The stage during which each parse of a CSV happened, in the module's first job."""
    return []


def test_the_job_parses_its_csv_once_and_hands_it_on(job, csv_reads):
    # The first stage reads it; search, retraining, export and the device check reuse it.
    assert csv_reads == ["inspect"]


def test_every_stage_leaves_its_results(job):
    _, outcome = job
    out = outcome.out
    for name in ("run.json", "data_summary.json", "device_check.json", "report.md", "report.html"):
        assert (out / name).exists(), name
    assert (out / "bundle" / "model.tflite").exists()
    assert (out / "search" / "comparison.json").exists()
    assert outcome.winner in ("gru", "lstm")
    md = outcome.report_md.read_text()
    for section in (
        "## Data",
        "## Search",
        "## GRU vs LSTM",
        "## Against the baselines",
        "## Prediction intervals (test part)",
        "## Quantization",
        "## On-device check",
        "## Reproduce and deploy",
    ):
        assert section in md
    assert "Holt-Winters" in md and "seasonal naive" in md
    export = json.loads((out / "bundle" / "bundle.json").read_text())["metrics"]["export"]
    shipped = next(m for m in export["modes"] if m["mode"] == export["shipped"])
    row = next(line for line in md.splitlines() if line.startswith("| shipped model ("))
    assert f"({shipped['mode']}, LiteRT)" in row and f"| {shipped['mase']:.3f} |" in row
    assert "forecaster run " in md and "forecaster predict" in md
    # The device path wrote the shipped file's intervals, and they are the bundle's.
    check = json.loads((out / "device_check.json").read_text())
    assert [s["level"] for s in check["intervals"]] == [0.8, 0.95]
    assert check["max_abs_bounds_vs_keras"] <= check["tolerance"] and check["passed"]
    assert 0.5 < check["intervals"][1]["coverage"] <= 1
    # Rolling predict's default intervals adapt to recent errors: scored on the same origins,
    # narrower or wider than the bundle's somewhere.
    adaptive = check["adaptive_intervals"]
    assert check["adapt"] == 100 and [s["level"] for s in adaptive] == [0.8, 0.95]
    assert 0.5 < adaptive[1]["coverage"] <= 1
    assert adaptive[0]["width"] != pytest.approx(check["intervals"][0]["width"], rel=1e-6)
    lines = md.splitlines()
    shipped_rows = [i for i, line in enumerate(lines) if re.match(r"\| (\*\*)?shipped model", line)]
    # In the baselines' table, then nominal vs achieved coverage: the bundle's, then adapting.
    assert len(shipped_rows) == 3
    assert "80%" in lines[shipped_rows[1]] and "| 95% |" in lines[shipped_rows[1] + 1]
    assert "adapting (last 100 errors)" in lines[shipped_rows[2]]
    assert f"pip install {WHEEL}" in md and "pip install forecaster" not in md


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_opens_in_a_real_browser_without_errors(job, tmp_path):
    _, outcome = job
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    html = outcome.report_html.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    url = outcome.report_html.resolve().as_uri()
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr
    assert len(re.findall(r"<table", dom.stdout)) >= 6
    images = re.findall(r'<img src="data:image/png;base64,', dom.stdout)
    assert len(images) >= 3
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1100,2400", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] == 2400
    assert pixels[..., :3].std() > 0.05  # tables and plots, not a blank page


def test_existing_output_needs_resume_or_overwrite(job):
    csv, outcome = job
    with pytest.raises(ConfigError, match="already exists; pass --resume to continue"):
        tiny_job(csv, outcome.out)


def test_failed_stage_keeps_earlier_results_and_resume_finishes(job, tmp_path, monkeypatch):
    csv, finished_job = job
    # A run that has finished its search: the fixture's, without what later stages wrote.
    out = tmp_path / "run"
    shutil.copytree(finished_job.out, out)
    shutil.rmtree(out / "bundle")
    for name in ("report.md", "report.html", "device_check.json", "test_predictions.csv"):
        (out / name).unlink()
    state = json.loads((out / "run.json").read_text())
    state["stages"] = {"inspect": True, "search": True}
    (out / "run.json").write_text(json.dumps(state))

    def broken(*args, **kwargs):
        raise ExportError("the converter crashed (signal 11)")

    monkeypatch.setattr("forecaster.job.run._export", broken)
    with pytest.raises(StageError, match=r"stage 'export' failed: the converter crashed"):
        tiny_job(csv, out, resume=True)
    assert (out / "search" / "winner" / "model.keras").exists()
    assert not (out / "bundle").exists()
    assert json.loads((out / "run.json").read_text())["stages"] == state["stages"]
    monkeypatch.undo()
    finished = tiny_job(csv, out, resume=True)
    assert finished.skipped == ["inspect", "search"]
    assert (out / "report.html").exists() and (out / "bundle" / "model.tflite").exists()


def test_run_cli_refuses_an_existing_directory_and_a_bad_budget(job, runner):
    from forecaster.cli.app import app
    from tests.test_cli_data import one_line_error

    csv, outcome = job
    line = one_line_error(
        runner.invoke(app, ["run", str(csv), "-t", "temp", "--out", str(outcome.out)])
    )
    assert line.startswith(f"Error: {outcome.out} already exists; pass --resume")
    bad = runner.invoke(app, ["run", str(csv), "-t", "temp", "--budget", "soon"])
    assert "--budget" in one_line_error(bad, 2)


def test_the_report_leads_with_the_verdict_in_units_then_the_forecast(job):
    _, outcome = job
    md = outcome.report_md.read_text()
    verdict = md.index("Verdict:")
    assert verdict < md.index("forecast.png") < md.index("## GRU vs LSTM") < md.index("## Data")
    lead = md[:verdict]
    assert "forecasts temp 6 steps (6h00m) ahead" in lead
    assert "temp's own units" in lead and "the best of" in lead
    # The verdict is on the file that ships, run by LiteRT, not on the Keras model.
    from forecaster.bundle import Bundle
    from forecaster.export.gate import ExportRecord

    shipped = ExportRecord.of(Bundle.load(outcome.out / "bundle")).shipped_result()
    assert f"off by {shipped.mae:.4g} on average" in lead
    assert "Verdict: the shipped model " in md or "Verdict: WARNING: the shipped model" in md
    assert "MASE, used below, divides an error" in md
    assert "model / it" not in md and "| model / baseline |" in md
