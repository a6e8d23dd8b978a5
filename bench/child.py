"""Run one benchmark section in this process and write its results as JSON.

`python -m bench.child SECTION --settings JSON --work DIR --deadline T --out FILE`; the
orchestrator (`python -m bench`) starts one child per section.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from bench.fixtures import Context
from bench.results import Section
from bench.settings import Settings

# key -> (module, title), in the order a run measures them.
SECTIONS = {
    "startup": ("bench.startup", "Startup"),
    "training": ("bench.training", "GRU vs LSTM training cost"),
    "inputs": ("bench.inputs", "Training input pipeline"),
    "export": ("bench.exporting", "Export: size and accuracy per quantization mode"),
    "inference": ("bench.inference", "Inference: LiteRT Predictor vs Keras"),
    "streaming": ("bench.streaming", "Streaming predict: memory and rows/s"),
    "fleet": ("bench.fleet", "Fleet predict: many series in one file vs one series"),
}


def settings_from_json(text: str) -> Settings:
    """Settings sent by the orchestrator (JSON lists back to tuples)."""
    raw = json.loads(text)

    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    fields: dict[str, Any] = {k: tuples(v) for k, v in raw.items()}
    return Settings(**fields)


def main(argv: list[str]) -> int:
    """Run the section, always write a JSON result (with the traceback if it failed)."""
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("section", choices=list(SECTIONS))
    parser.add_argument("--settings", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # The converter's deprecation chatter is not a result; real errors still raise.
    warnings.simplefilter("ignore")
    logging.getLogger("absl").setLevel(logging.ERROR)
    module_name, title = SECTIONS[args.section]
    ctx = Context(settings_from_json(args.settings), args.work, args.deadline)
    started = time.perf_counter()
    try:
        section: Section = importlib.import_module(module_name).run(ctx)
    except Exception:
        section = Section(args.section, title, error=traceback.format_exc(limit=8))
    section.key, section.title = args.section, title
    section.seconds = time.perf_counter() - started
    args.out.write_text(json.dumps(section.to_json(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
