"""Reading sensor CSVs: the time grid, gaps, calendar covariates and what `data inspect` shows."""
