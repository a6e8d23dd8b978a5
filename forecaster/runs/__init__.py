"""Run directories: train one model and evaluate it (`forecaster train`, `forecaster evaluate`)."""
