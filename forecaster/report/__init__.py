"""What people read: plots, the report document, the GRU-vs-LSTM comparison and the job report."""
