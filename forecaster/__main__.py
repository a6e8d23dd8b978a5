"""`python -m forecaster` runs the command line."""

from forecaster.cli.app import main

main()
