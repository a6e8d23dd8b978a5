"""The Keras Tuner search over GRU and LSTM, and the comparison of the two."""
