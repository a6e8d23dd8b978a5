"""Scoring forecasts: baselines, metrics and rolling-origin evaluation in original units."""
