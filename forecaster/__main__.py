"""`python -m forecaster` runs the command line."""

from forecaster.cli import main

main()
