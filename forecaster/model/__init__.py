"""The network: split, scaling and windows; the GRU/LSTM builders; fitting one model."""
