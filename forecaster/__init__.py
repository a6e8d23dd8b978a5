"""Forecast sensor time series with GRU/LSTM models and ship them to small devices."""

__version__ = "0.1.0"
