"""A child process for the training section: GRU/LSTM training steps under given TF thread pools.

`python -m bench.train_probe --settings JSON --work DIR --intra N --inter M` prints one JSON
line: seconds per training step for each cell. TensorFlow's thread pools are fixed when its runtime
starts, which is why this needs its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Set the thread pools before TensorFlow starts, then time the blocks."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_probe")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--intra", type=int, required=True)
    parser.add_argument("--inter", type=int, required=True)
    parser.add_argument("--cells", default="gru")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    # 0 keeps TensorFlow's own choice (the reference process).
    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)

    from bench import fixtures
    from bench.child import settings_from_json
    from bench.training import step_times

    ctx = fixtures.Context(settings_from_json(args.settings), args.work, time.time() + 3600)
    settings = ctx.settings
    samples = step_times(
        fixtures.prepared(ctx), args.cells.split(","), settings.speed_steps, lambda _: None
    )
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
