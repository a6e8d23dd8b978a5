"""`python -m bench [--quick]`: run every section, print the tables, write results.md and JSON.

The full run writes bench/results.md and bench/results.json (the README quotes them); a quick
run writes bench/out/results-quick.md and .json, so it never replaces the full results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import machine
from bench.child import SECTIONS
from bench.results import Section, markdown_table, section_markdown, targets_table
from bench.settings import QUICK, Settings, settings_for

HERE = Path(__file__).resolve().parent
GRACE_S = 120  # a section may overrun the run's deadline by this much before it is stopped


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="forecaster's benchmarks (see bench/__init__.py)."
    )
    parser.add_argument("--quick", action="store_true", help="the ~2-minute subset")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--stream-mb", default="", help="the two CSV sizes of the streaming section, e.g. 4,16"
    )
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument(
        "--work", type=Path, default=None, help="work directory to use and keep (default: temp)"
    )
    return parser.parse_args(argv)


def run_section(
    key: str, settings: Settings, work: Path, deadline: float, number: int, count: int
) -> Section:
    """Run one section in a child process; a crash or timeout becomes the section's error."""
    title = SECTIONS[key][1]
    print(f"[{number}/{count}] {title}", file=sys.stderr, flush=True)
    out = work / f"section-{key}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "bench.child",
        key,
        "--settings",
        json.dumps(dataclasses.asdict(settings)),
        "--work",
        str(work),
        "--deadline",
        str(deadline),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=HERE.parent, env=env, start_new_session=True)
    timeout = max(deadline + GRACE_S - time.time(), 60.0)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except KeyboardInterrupt:
        # The child has its own session, so Ctrl-C did not reach it: stop it too.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    seconds = time.perf_counter() - started
    if out.exists():
        section = Section.from_json(json.loads(out.read_text()))
    else:
        reason = (
            f"stopped after {seconds:.0f} s (past the run's time budget)"
            if process.returncode == -signal.SIGKILL
            else f"the section's process exited with code {process.returncode}"
        )
        section = Section(key, title, error=reason, seconds=seconds)
    print(f"    done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return section


def render(
    sections: list[Section],
    settings: Settings,
    info: dict[str, object],
    seconds: float,
    only: str = "",
) -> str:
    """The whole results.md."""
    versions = info["versions"]
    assert isinstance(versions, dict)
    loads = info["load_average"]
    assert isinstance(loads, dict)
    lines = [
        "# forecaster benchmarks",
        "",
        f"Written by `python -m bench{' --quick' if settings is QUICK else ''}` "
        f"({'`make bench-quick`' if settings is QUICK else '`make bench`'}) on {info['date']}; "
        f"the run took {seconds / 60:.1f} min."
        + (
            f" A partial run (`--only {only}`): the other sections are kept from the last full "
            "run, as their notes say."
            if only
            else ""
        ),
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {info['cpu']} ({info['simd']}), {info['logical_cpus']} logical CPUs "
        f"({info['usable_cpus']} usable), GPU: {info['gpu']} |",
        f"| memory | {info['memory_gib']} GiB |",
        f"| OS | {info['os']}, Python {info['python']} |",
        f"| BLAS | {info['blas']} |",
        "| libraries | " + ", ".join(f"{k} {v}" for k, v in versions.items()) + " |",
        f"| forecaster checkout | {info['git']} |",
        f"| load average (1/5/15 min) | start {loads['start']}, end {loads['end']} |",
        "",
        "How to read this: every comparison is a ratio of contenders measured side by side in "
        "this run (interleaved repeats in rotating order, medians; ratios are medians of "
        "per-repeat ratios), because these machines are shared and noisy: absolute numbers "
        "move with the load average above, ratios much less. Misses are marked **NO**.",
        "",
        "## Targets",
        "",
        markdown_table(targets_table(sections)),
        "",
    ]
    for section in sections:
        lines.append(section_markdown(_number(section.key), section))
    return "\n".join(lines)


# Sections measured by runs of their own (each takes longer than the whole benchmark) and
# copied in: module, make target, what the run does.
SEPARATE = {
    "tuning": ("tuning", "bench-tuning", "two searches of tens of minutes"),
    "quality": ("quality", "bench-quality", "the full job once per series"),
}


def _number(key: str) -> int:
    # Numbers follow SECTIONS, then SEPARATE, so a partial run keeps them.
    order = [*SECTIONS, *SEPARATE]
    return order.index(key) + 1 if key in order else len(order) + 1


def merge_previous(path: Path, fresh: list[Section], date: str) -> list[Section]:
    """A partial run (--only) replaces its sections in the full results and keeps the others."""
    if not path.exists():
        return fresh
    previous = json.loads(path.read_text())
    kept = {raw["key"]: Section.from_json(raw) for raw in previous["sections"]}
    old_date = previous.get("machine", {}).get("date", "?")
    for section in kept.values():
        # A section re-run alone earlier already says when it ran.
        if not any(n.startswith(("From the full run of", "Re-run on")) for n in section.notes):
            section.notes.insert(0, f"From the full run of {old_date}.")
    for section in fresh:
        section.notes.insert(0, f"Re-run on {date} (`python -m bench --only {section.key}`).")
        kept[section.key] = section
    return [kept[k] for k in SECTIONS if k in kept]


def separate_section(directory: Path, key: str) -> Section | None:
    """The latest table of a section with a run of its own (SEPARATE), if there is one."""
    stem, target, why = SEPARATE[key]
    path = directory / f"{stem}.json"
    if not path.exists():
        return None
    section = Section.from_json(json.loads(path.read_text()))
    section.notes.insert(
        0,
        f"From bench/{stem}.md (`make {target}`, run {section.data.get('date', '?')}, "
        f"not re-run by `make bench`: {why}).",
    )
    return section


def main(argv: list[str]) -> int:
    """Run the sections in order, then write and print the results."""
    args = parse_args(argv)
    settings = settings_for("quick" if args.quick else "full")
    if args.stream_mb:
        sizes = tuple(float(v) for v in args.stream_mb.split(","))
        if len(sizes) != 2:
            raise SystemExit("--stream-mb takes two sizes, e.g. 4,16")
        settings = dataclasses.replace(settings, stream_mb=sizes)
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(SECTIONS)
    unknown = [k for k in keys if k not in SECTIONS]
    if unknown:
        raise SystemExit(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        )
    out_dir = args.out or (HERE / "out" if args.quick else HERE)
    stem = "results-quick" if args.quick else "results"
    work = args.work or Path(tempfile.mkdtemp(prefix="forecaster-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # Sections share the budget; the last minute is kept for writing the results.
    deadline = started + settings.budget_s - 60
    info: dict[str, object] = machine.describe() | {"settings": settings.name}
    load_start = machine.load_average()
    sections = []
    try:
        for count, key in enumerate(keys, 1):
            section = run_section(key, settings, work, deadline, count, len(keys))
            sections.append(section)
            print(section_markdown(_number(key), section), flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.time() - started
    info["load_average"] = {"start": load_start, "end": machine.load_average()}
    merged = bool(args.only) and not args.quick and args.out is None
    if merged:
        sections = merge_previous(out_dir / f"{stem}.json", sections, str(info["date"]))
    if not args.quick:
        sections += [s for key in SEPARATE if (s := separate_section(HERE, key)) is not None]
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = render(sections, settings, info, seconds, args.only if merged else "")
    (out_dir / f"{stem}.md").write_text(markdown)
    results = {
        "schema": 1,
        "settings": dataclasses.asdict(settings),
        "machine": info,
        "seconds": seconds,
        "sections": [s.to_json() for s in sections],
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    print(markdown_table(targets_table(sections)))
    print(f"\n{len(sections)} section(s) in {seconds / 60:.1f} min; wrote {out_dir / stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
