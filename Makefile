# forecaster: install, check, test, wheel, demo, benchmark.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := data/weather_greensboro.csv

.PHONY: install check test test-fast docs wheel demo bench bench-quick bench-tuning bench-quality clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "forecaster needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python  ## create .venv and install forecaster with the training and dev extras
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"

check:  ## lint, format check, type check
	$(BIN)/ruff check forecaster tests bench
	$(BIN)/ruff format --check forecaster tests bench
	$(BIN)/mypy

test:  ## the whole test suite, slow tests included, on two processes (a test file stays in one)
	$(BIN)/pytest -n 2 --dist loadfile

test-fast:  ## the tests that take a few seconds or less
	$(BIN)/pytest -m "not slow"

docs:  ## docs/cli.md, the command reference, from the commands' own help
	$(BIN)/python -m forecaster.cli.docs docs/cli.md

wheel: $(BIN)/python  ## build dist/sensor_forecaster-VERSION-py3-none-any.whl, the file a device installs
	$(BIN)/python -m pip wheel --quiet --no-deps -w dist .

DEMO_RUN := models/demo

demo:  ## the main job on the sample data (its --budget: 5 minutes), then predict with its bundle
	$(BIN)/forecaster run $(SAMPLE) --target temp_c --budget 5m --max-epochs 20 --out $(DEMO_RUN) --overwrite
	$(BIN)/forecaster predict $(DEMO_RUN)/bundle $(SAMPLE) --out $(DEMO_RUN)/predictions.csv

bench:  ## benchmarks; writes bench/results.md and bench/results.json
	$(BIN)/python -m bench

bench-quick:  ## a two-minute subset of the benchmarks
	$(BIN)/python -m bench --quick

bench-tuning:  ## the default `forecaster tune` on 20k rows vs a 3x larger random search (~35 min)
	$(BIN)/python -m bench.tuning

bench-quality:  ## forecast quality of the default `forecaster run` on five real series (~1 hour)
	$(BIN)/python -m bench.quality

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
