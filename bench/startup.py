"""1. Startup: `forecaster --help` wall time and what the predict path imports, vs TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.fixtures import Context
from bench.results import Section, Table, Target
from bench.timing import forecaster_command, median, ratio, run_measured

HELP_TARGET_S = 0.3
HEAVY = ("tensorflow", "keras", "keras_tuner", "sklearn", "matplotlib", "statsmodels")
PREDICT_IMPORT = "import forecaster.device.predictor, forecaster.device.predict_csv"
PROBE = (
    f"{PREDICT_IMPORT}\n"
    "import json, sys\n"
    f"heavy = {HEAVY!r}\n"
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
)


def _env() -> dict[str, str]:
    return os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}


def _time(command: list[str]) -> float:
    done = run_measured(command, timeout_s=120, env=_env())
    if not done.ok:
        raise RuntimeError(f"{' '.join(command)} failed: {done.failure()}")
    return done.seconds


def _interleaved(commands: dict[str, list[str]], repeats: dict[str, int]) -> dict[str, list[float]]:
    """Wall seconds of each command, repeats taken in rotating order after one warm-up run each."""
    for command in commands.values():
        _time(command)  # warm the page cache: every command starts from the same state
    samples: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for r in range(max(repeats.values())):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if len(samples[name]) < repeats[name]:
                samples[name].append(_time(commands[name]))
    return samples


def _top_imports(python: str, module: str, count: int = 5) -> list[tuple[str, float]]:
    """The direct imports of `module` that cost most (python -X importtime, cumulative)."""
    done = run_measured([python, "-X", "importtime", "-c", f"import {module}"], timeout_s=120)
    entries = []  # (depth, name, cumulative seconds), children listed before their parent
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # " name", "   child", ...
        entries.append((depth, name.strip(), int(parts[1]) / 1e6))
    tops = [i for i, (depth, name, _) in enumerate(entries) if depth == 0 and name == module]
    if not tops:
        return []
    end = tops[-1]
    start = max((i for i in range(end) if entries[i][0] == 0), default=-1) + 1
    direct = [(name, cost) for depth, name, cost in entries[start:end] if depth == 1]
    return sorted(direct, key=lambda c: -c[1])[:count]


def run(ctx: Context) -> Section:
    """Time the commands side by side; check the predict path for heavy modules."""
    settings = ctx.settings
    python = sys.executable
    commands = {
        "forecaster --help": [*forecaster_command(python), "--help"],
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import forecaster.cli.app'": [python, "-c", "import forecaster.cli.app"],
        f"python -c '{PREDICT_IMPORT}'": [python, "-c", PREDICT_IMPORT],
        "python -c 'import tensorflow'": [python, "-c", "import tensorflow"],
    }
    names = list(commands)
    repeats = dict.fromkeys(names[:3], settings.help_repeats)
    repeats[names[3]] = settings.import_repeats
    repeats[names[4]] = settings.tf_import_repeats
    ctx.log("timing --help, interpreter, CLI import, predict-path import, TensorFlow import")
    samples = _interleaved(commands, repeats)
    heavy = _heavy_modules(python)

    base = median(samples["python -c pass"])
    help_s = median(samples["forecaster --help"])
    cli_import = median(samples["python -c 'import forecaster.cli.app'"])
    predict = samples[names[3]]
    tf_import = samples[names[4]]
    table = Table(["command", "median s", "min s", "max s", "runs", "vs python -c pass"])
    for name in names:
        values = samples[name]
        extra = f"+{median(values) - base:.3f} s" if name != names[1] else ""
        table.add(name, median(values), min(values), max(values), len(values), extra)
    predict_vs_tf = ratio(tf_import, predict[: len(tf_import)])
    table.add(
        "import TensorFlow / import predict path",
        f"{predict_vs_tf:.1f}x",
        None,
        None,
        len(tf_import),
        "",
    )
    tops = _top_imports(python, "forecaster.cli.app")
    section = Section("startup", "Startup", tables=[table])
    section.targets = [
        Target(
            "`forecaster --help` wall time",
            f"< {HELP_TARGET_S} s",
            f"{help_s:.3f} s (median of {len(samples['forecaster --help'])})",
            help_s < HELP_TARGET_S,
        ),
        Target(
            "predict path imports no TensorFlow",
            "no heavy module after `" + PREDICT_IMPORT + "`",
            "none" if not heavy else "imports " + ", ".join(heavy),
            not heavy,
        ),
    ]
    section.notes = [
        f"`forecaster --help` = interpreter start {base:.3f} s + importing forecaster.cli.app "
        f"{cli_import - base:.3f} s + building and printing the help {help_s - cli_import:.3f} s "
        "(medians, so the parts only roughly add up).",
        "Largest direct imports of forecaster.cli.app (python -X importtime, one run, cumulative): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in tops)
        + ".",
        f"The predict path imports in {median(predict):.2f} s vs {median(tf_import):.2f} s for "
        f"TensorFlow: {predict_vs_tf:.1f}x less (paired repeats).",
    ]
    section.data = {"samples": samples, "heavy_modules": heavy, "top_imports": tops}
    return section


def _heavy_modules(python: str) -> list[str]:
    """Heavy libraries in sys.modules after importing the predict path, in a fresh interpreter."""
    done = subprocess.run(
        [python, "-c", PROBE], capture_output=True, text=True, env=_env(), check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded
