# The two Quickstart commands (`make demo`, `make test`) create .venv when it is missing and install with the
# tested pins of constraints.txt (torch 2.13.0 first: an unpinned torch would pull the CUDA wheels).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_TRIALS ?= 8

.PHONY: install test lint demo clean

# The `postgres` extra (psycopg with its binary wheel) is installed too: tests/search/test_postgres.py needs the driver;
# the server is the Debian package, which .ci/run installs when it can (the test skips with the reason otherwise).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,postgres]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) lint
	$(VENV)/bin/pytest -q

# A real search on the embedded synthetic data (SQLite storage, local Optuna), then its Pareto front and plots.
# Running it again resumes the same study (nothing to do once it holds its trials) and reprints the front.
demo: $(STAMP)
	$(VENV)/bin/kunlun search demo --budget 4e6 --trials $(DEMO_TRIALS) --out results/demo $$(test -f results/demo/study.json && echo --resume)
	$(VENV)/bin/kunlun pareto results/demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
