# The two Quickstart commands (`make demo`, `make test`) create .venv when it is missing and install with the
# tested pins of constraints.txt (torch 2.13.0 first: an unpinned torch would pull the CUDA wheels).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_TRIALS ?= 8

.PHONY: install test lint demo clean wheelhouse

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

# Optuna and the dependencies the GPU image lacks, as wheels for its interpreter (CPython GPU_PYVER, x86_64), at the
# versions of constraints.txt: they travel to the GPU machine with the code (git-ignored, 5 MB) and install there with
# no index (README, "Search on a GPU machine"). The image has numpy, pyyaml, tqdm, packaging and markupsafe; plotly is
# left out (10 MB): `kunlun pareto` runs back here. Built aside and moved into place, so a failed download leaves the
# previous wheelhouse whole.
WHEELHOUSE ?= .whl
GPU_PYVER ?= 3.12
GPU_WHEELS := optuna alembic sqlalchemy mako colorlog typing-extensions

wheelhouse:
	@for w in $(GPU_WHEELS); do grep -qi "^$$w==" constraints.txt || { echo "constraints.txt: no pin for $$w" >&2; exit 2; }; done
	rm -rf $(WHEELHOUSE).tmp && mkdir -p $(WHEELHOUSE).tmp
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PYVER) --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d $(WHEELHOUSE).tmp $$(for w in $(GPU_WHEELS); do grep -i "^$$w==" constraints.txt; done)
	rm -rf $(WHEELHOUSE) && mv $(WHEELHOUSE).tmp $(WHEELHOUSE)
	@du -sh $(WHEELHOUSE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
