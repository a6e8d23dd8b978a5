"""On the device: the predictor, streaming over CSVs, batch predict and the bench.

Numpy, pandas and a LiteRT interpreter only: never TensorFlow, Keras or scikit-learn.
"""
