# mqstudio: `make run` launches the app, `make test` runs every check CI runs, `make bench` the benchmarks.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck contracts pytest bench clean services screenshots bundle

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(VENV)/bin/mqstudio

test: $(STAMP) services lint contracts typecheck pytest

services:
	./scripts/ensure-services

lint: $(STAMP)
	$(VENV)/bin/ruff check mqstudio tests benchmarks

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	PY=$(PY) ./scripts/run-tests

# amqp_throughput.py is the workload library bench_amqp.py drives against both brokers.
BENCHES := $(filter-out benchmarks/amqp_throughput.py,$(sort $(wildcard benchmarks/*.py)))

bench: $(STAMP) services
	@for b in $(BENCHES); do echo "== $$b"; QT_QPA_PLATFORM=offscreen $(PY) $$b || exit 1; done

# docs/screenshots/<example>.png: the main window with each bundled example, rendered offscreen at 1280x800
screenshots: $(STAMP)
	MQSTUDIO=$(VENV)/bin/mqstudio ./scripts/make-screenshots

# dist/mqstudio/: a one-folder PyInstaller bundle (the `build` extra), smoke-tested offscreen; a minute or
# two, so not part of `make test`
bundle: $(STAMP)
	$(PY) -c "import PyInstaller" 2>/dev/null || $(PY) -m pip install --quiet -e '.[build]'
	PY=$(PY) ./packaging/build-bundle.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
