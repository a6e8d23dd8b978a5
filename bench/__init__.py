"""forecaster's benchmark suite: `python -m bench` (or `make bench`) writes bench/results.md.

Every comparison is measured side by side in one run (interleaved repeats, medians), because the
machines this runs on are shared and noisy. Each section runs in its own child process, so
TensorFlow's global settings (op determinism, thread pools) never leak from one into another.
"""
